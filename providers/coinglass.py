"""Coinglass API v4 (header ``CG-API-KEY``): futures data aggregated across exchanges.

Coinglass answers most errors with HTTP 200 and a STRING ``code`` in the body: "0" is success,
"400" "Invalid API key", "401" "API key missing." or "401" "Upgrade plan" (a valid key whose plan
does not cover the endpoint), "429" rate limited. Numbers arrive as numbers or strings (OI and
funding OHLC). History endpoints return rows oldest first.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from providers.coinglass_models import (
    CoinMarket,
    ExchangeFunding,
    ExchangeOpenInterest,
    ExchangePair,
    FearGreedPoint,
    Heatmap,
    LiquidationBucket,
    LiquidationLevel,
    LiquidationOrder,
    Ohlc,
    PerpetualPair,
    RatioPoint,
)
from providers.errors import ErrorKind, ProviderError
from providers.http import ProviderHttp
from providers.values import from_millis, from_seconds, parse_float

PROVIDER = "coinglass"
T = TypeVar("T")
# Our REST API takes the seed's spelling (h1 ...) and v4's (1h ...); upstream always gets v4's.
INTERVALS = {
    "h1": "1h",
    "h4": "4h",
    "h8": "8h",
    "h12": "12h",
    "d1": "1d",
    "1h": "1h",
    "4h": "4h",
    "8h": "8h",
    "12h": "12h",
    "1d": "1d",
}
# Freshness per kind of data (seconds); reference lists change daily, the index once a day.
TTLS = {
    "/api/futures/supported-": 3600,
    "/api/index/fear-greed-history": 3600,
    "/api/futures/coins-markets": 30,
    "/api/futures/pairs-markets": 30,
    "/api/futures/liquidation/order": 30,
    "/api/futures/liquidation/aggregated-history": 60,
    "/api/futures/liquidation/aggregated-": 300,  # map and heatmap
    "/api/futures/global-long-short-account-ratio": 300,
    "/api/futures/top-long-short-": 300,
    "/api/futures/open-interest/": 60,
    "/api/futures/funding-rate/": 60,
}
_WINDOWS = ("5m", "15m", "30m", "1h", "4h", "12h", "24h")


def to_v4_interval(interval: str) -> str:
    """v4 spelling of an interval; ValueError names the allowed values."""
    try:
        return INTERVALS[interval.strip().lower()]
    except KeyError:
        raise ValueError(
            f"interval must be one of h1, h4, h8, h12, d1 (or 1h, 4h, 8h, 12h, 1d), got {interval!r}"
        ) from None


def classify_envelope(body: Any) -> tuple[ErrorKind, str]:
    """What a non-"0" Coinglass envelope means."""
    code = str(body.get("code", "")) if isinstance(body, dict) else ""
    msg = str(body.get("msg", "")) if isinstance(body, dict) else ""
    lowered = msg.lower()
    if code == "429":  # first: a rate-limit message may mention the plan; a denial is remembered for an hour
        return ErrorKind.RATE_LIMITED, f"rate limited (code {code}: {msg})"
    if "upgrade" in lowered or "plan" in lowered:
        return ErrorKind.PLAN, f"plan does not include this endpoint (code {code}: {msg})"
    if code in {"400", "401", "403"} and ("key" in lowered or code in {"401", "403"}):
        return ErrorKind.AUTH, f"API key rejected (code {code}: {msg})"
    if code == "404":
        return ErrorKind.NOT_FOUND, f"not found (code {code}: {msg})"
    return ErrorKind.UPSTREAM, f"error code {code or '?'}: {msg or 'no message'}"


def _f(row: dict[str, Any], key: str, default: float = 0.0) -> float:
    value = row.get(key)
    if value is None or value == "":
        return default
    return parse_float(value)


class CoinglassClient:
    def __init__(self, http: ProviderHttp | None) -> None:
        self.http = http  # None: COINGLASS_API_KEY is not set

    async def _data(self, endpoint: str, params: dict[str, Any] | None = None) -> Any:
        http = self.http
        if http is None:
            raise ProviderError(PROVIDER, endpoint, ErrorKind.NOT_CONFIGURED, "COINGLASS_API_KEY is not set")
        return await http.cached(endpoint, params, lambda: self._fetch(http, endpoint, params))

    async def _fetch(self, http: ProviderHttp, endpoint: str, params: dict[str, Any] | None) -> Any:
        _, body = await http.get_json(endpoint, params)
        if not isinstance(body, dict):
            raise self._fail(endpoint, ErrorKind.BAD_PAYLOAD, "response is not a JSON object")
        code = str(body.get("code", ""))
        if code != "0":
            kind, message = classify_envelope(body)
            if kind is ErrorKind.PLAN:
                message = f"your Coinglass plan does not include {endpoint}"
            raise self._fail(endpoint, kind, message, provider_code=code)
        data = body.get("data")
        if data is None or data == [] or data == {}:
            what = f" for {params['symbol']}" if params and "symbol" in params else ""
            raise self._fail(endpoint, ErrorKind.NOT_FOUND, f"no data{what}")
        http.mark_success()
        return data

    def _fail(self, endpoint: str, kind: ErrorKind, message: str, provider_code: str | None = None) -> ProviderError:
        assert self.http is not None  # only reached after a request, which needs the key
        return self.http.fail(endpoint, kind, message, provider_code=provider_code)

    def _parse(self, endpoint: str, rows: Any, parse: Callable[[Any], T]) -> list[T]:
        if not isinstance(rows, list):
            raise self._fail(endpoint, ErrorKind.BAD_PAYLOAD, "`data` is not a list")
        try:
            return [parse(row) for row in rows]
        except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
            raise self._fail(endpoint, ErrorKind.BAD_PAYLOAD, f"unexpected row shape ({exc})") from None

    # ---- coins and exchanges -------------------------------------------------------------------

    async def supported_coins(self) -> list[str]:
        endpoint = "/api/futures/supported-coins"
        return self._parse(endpoint, await self._data(endpoint), str)

    async def exchange_pairs(self) -> dict[str, list[ExchangePair]]:
        endpoint = "/api/futures/supported-exchange-pairs"
        data = await self._data(endpoint)
        if not isinstance(data, dict):
            raise self._fail(endpoint, ErrorKind.BAD_PAYLOAD, "`data` is not an object")
        return {
            exchange: self._parse(
                endpoint,
                pairs,
                lambda p: ExchangePair(
                    str(p["instrument_id"]), str(p.get("base_asset", "")), str(p.get("quote_asset", ""))
                ),
            )
            for exchange, pairs in data.items()
        }

    # ---- markets -------------------------------------------------------------------------------

    async def coins_markets(self) -> list[CoinMarket]:
        endpoint = "/api/futures/coins-markets"
        # Standard plan and above. One page holds the largest coins; 100 covers what users ask for.
        return self._parse(endpoint, await self._data(endpoint, {"per_page": 100, "page": 1}), _coin_market)

    async def coin_market(self, coin: str) -> CoinMarket:
        for market in await self.coins_markets():
            if market.symbol.upper() == coin:
                return market
        raise self._fail("/api/futures/coins-markets", ErrorKind.NOT_FOUND, f"Coinglass has no market data for {coin}")

    async def pairs_markets(self, coin: str) -> list[PerpetualPair]:
        endpoint = "/api/futures/pairs-markets"
        return self._parse(endpoint, await self._data(endpoint, {"symbol": coin}), _perpetual_pair)

    # ---- liquidations --------------------------------------------------------------------------

    async def liquidation_aggregated_history(
        self, coin: str, exchanges: Sequence[str], interval: str = "1h", limit: int = 24
    ) -> list[LiquidationBucket]:
        """Long/short liquidations summed over ``exchanges``, oldest first."""
        endpoint = "/api/futures/liquidation/aggregated-history"
        params = {
            "symbol": coin,
            "exchange_list": ",".join(exchanges),
            "interval": to_v4_interval(interval),
            "limit": limit,
        }
        return self._parse(
            endpoint,
            await self._data(endpoint, params),
            lambda r: LiquidationBucket(
                from_millis(r["time"]),
                _f(r, "aggregated_long_liquidation_usd"),
                _f(r, "aggregated_short_liquidation_usd"),
            ),
        )

    async def liquidation_orders(self, coin: str, exchange: str, min_usd: float = 10_000) -> list[LiquidationOrder]:
        endpoint = "/api/futures/liquidation/order"
        params = {"exchange": exchange, "symbol": coin, "min_liquidation_amount": str(int(min_usd))}
        return self._parse(
            endpoint,
            await self._data(endpoint, params),
            lambda r: LiquidationOrder(
                str(r.get("exchange_name", exchange)),
                str(r.get("symbol", "")),
                _f(r, "price"),
                _f(r, "usd_value"),
                # side 2 is a sell: the engine closed a long; side 1 a buy closing a short.
                "long" if int(r.get("side", 2)) == 2 else "short",
                from_millis(r["time"]),
            ),
        )

    async def liquidation_map(self, coin: str, range_: str = "1d") -> list[LiquidationLevel]:
        """Liquidation levels, largest first (Professional plan)."""
        endpoint = "/api/futures/liquidation/aggregated-map"
        data = await self._data(endpoint, {"symbol": coin, "range": range_})
        levels_by_price = data.get("data", data) if isinstance(data, dict) else None
        if not isinstance(levels_by_price, dict):
            raise self._fail(endpoint, ErrorKind.BAD_PAYLOAD, "`data.data` is not an object")
        rows = [entry for entries in levels_by_price.values() for entry in entries]
        levels = self._parse(
            endpoint,
            rows,
            lambda e: LiquidationLevel(
                parse_float(e[0]), parse_float(e[1]), parse_float(e[2]) if len(e) > 2 and e[2] is not None else 0.0
            ),
        )
        return sorted(levels, key=lambda level: level.liquidation_usd, reverse=True)

    async def liquidation_heatmap(self, coin: str, range_: str = "3d") -> Heatmap:
        """Liquidation leverage summed per price level (Professional plan)."""
        endpoint = "/api/futures/liquidation/aggregated-heatmap/model1"
        data = await self._data(endpoint, {"symbol": coin, "range": range_})
        try:
            y_axis = [parse_float(y) for y in data["y_axis"]]
            totals: dict[int, float] = {}
            for _x_index, y_index, amount in data["liquidation_leverage_data"]:
                totals[int(y_index)] = totals.get(int(y_index), 0.0) + parse_float(amount)
            candles = data.get("price_candlesticks") or []
            current = parse_float(candles[-1][4]) if candles else 0.0
            levels = tuple(LiquidationLevel(y_axis[i], usd, 0.0) for i, usd in totals.items() if 0 <= i < len(y_axis))
        except (KeyError, ValueError, TypeError, IndexError) as exc:
            raise self._fail(endpoint, ErrorKind.BAD_PAYLOAD, f"unexpected heatmap shape ({exc})") from None
        return Heatmap(current, tuple(sorted(levels, key=lambda level: level.liquidation_usd, reverse=True)))

    # ---- positioning ---------------------------------------------------------------------------

    async def _ratio_history(
        self, endpoint: str, prefix: str, pair: str, exchange: str, interval: str, limit: int
    ) -> list[RatioPoint]:
        params = {"exchange": exchange, "symbol": pair, "interval": to_v4_interval(interval), "limit": limit}
        return self._parse(
            endpoint,
            await self._data(endpoint, params),
            lambda r: RatioPoint(
                from_millis(r["time"]),
                _f(r, f"{prefix}_long_percent"),
                _f(r, f"{prefix}_short_percent"),
                _f(r, f"{prefix}_long_short_ratio"),
            ),
        )

    async def global_long_short_account_ratio(
        self, pair: str, exchange: str, interval: str = "1h", limit: int = 24
    ) -> list[RatioPoint]:
        """All accounts on one exchange pair (e.g. Binance BTCUSDT), oldest first."""
        return await self._ratio_history(
            "/api/futures/global-long-short-account-ratio/history", "global_account", pair, exchange, interval, limit
        )

    async def top_long_short_account_ratio(
        self, pair: str, exchange: str, interval: str = "1h", limit: int = 24
    ) -> list[RatioPoint]:
        return await self._ratio_history(
            "/api/futures/top-long-short-account-ratio/history", "top_account", pair, exchange, interval, limit
        )

    async def top_long_short_position_ratio(
        self, pair: str, exchange: str, interval: str = "1h", limit: int = 24
    ) -> list[RatioPoint]:
        return await self._ratio_history(
            "/api/futures/top-long-short-position-ratio/history", "top_position", pair, exchange, interval, limit
        )

    # ---- open interest and funding -------------------------------------------------------------

    async def _ohlc(self, endpoint: str, params: dict[str, Any]) -> list[Ohlc]:
        return self._parse(
            endpoint,
            await self._data(endpoint, params),
            lambda r: Ohlc(from_millis(r["time"]), _f(r, "open"), _f(r, "high"), _f(r, "low"), _f(r, "close")),
        )

    async def open_interest_history(self, coin: str, interval: str = "1h", limit: int = 25) -> list[Ohlc]:
        """Aggregated open interest OHLC in USD, oldest first."""
        return await self._ohlc(
            "/api/futures/open-interest/aggregated-history",
            {"symbol": coin, "interval": to_v4_interval(interval), "limit": limit, "unit": "usd"},
        )

    async def open_interest_exchanges(self, coin: str) -> list[ExchangeOpenInterest]:
        endpoint = "/api/futures/open-interest/exchange-list"
        return self._parse(
            endpoint,
            await self._data(endpoint, {"symbol": coin}),
            lambda r: ExchangeOpenInterest(
                str(r["exchange"]),
                _f(r, "open_interest_usd"),
                _f(r, "open_interest_quantity"),
                _f(r, "open_interest_change_percent_1h"),
                _f(r, "open_interest_change_percent_4h"),
                _f(r, "open_interest_change_percent_24h"),
            ),
        )

    async def funding_oi_weighted_history(self, coin: str, interval: str = "8h", limit: int = 30) -> list[Ohlc]:
        """OI-weighted funding rate OHLC in percent, oldest first."""
        return await self._ohlc(
            "/api/futures/funding-rate/oi-weight-history",
            {"symbol": coin, "interval": to_v4_interval(interval), "limit": limit},
        )

    async def funding_vol_weighted_history(self, coin: str, interval: str = "8h", limit: int = 30) -> list[Ohlc]:
        return await self._ohlc(
            "/api/futures/funding-rate/vol-weight-history",
            {"symbol": coin, "interval": to_v4_interval(interval), "limit": limit},
        )

    async def funding_exchanges(self, coin: str) -> list[ExchangeFunding]:
        """Current funding rate per exchange (the endpoint lists every coin; we keep ``coin``)."""
        endpoint = "/api/futures/funding-rate/exchange-list"
        entries = [
            e for e in await self._data(endpoint) if isinstance(e, dict) and str(e.get("symbol", "")).upper() == coin
        ]
        if not entries:
            raise self._fail(endpoint, ErrorKind.NOT_FOUND, f"no funding rates for {coin}")
        rows = [(r, "usdt") for r in entries[0].get("stablecoin_margin_list", [])] + [
            (r, "coin") for r in entries[0].get("token_margin_list", [])
        ]
        return self._parse(
            endpoint,
            rows,
            lambda rm: ExchangeFunding(
                str(rm[0]["exchange"]),
                _f(rm[0], "funding_rate"),
                _f(rm[0], "funding_rate_interval", 8.0),
                from_millis(rm[0]["next_funding_time"]) if rm[0].get("next_funding_time") else None,
                rm[1],
            ),
        )

    async def fear_greed_history(self) -> list[FearGreedPoint]:
        """Fear & greed readings, oldest first.

        The docs show ``data`` as a list holding one object of parallel lists; a public client reads
        it as the object itself. Both are accepted (the reference marks the shape unconfirmed).
        """
        endpoint = "/api/index/fear-greed-history"
        data = await self._data(endpoint)
        series = data[0] if isinstance(data, list) and data else data
        if not isinstance(series, dict):
            raise self._fail(endpoint, ErrorKind.BAD_PAYLOAD, "unexpected fear & greed shape")
        values, times = series.get("data_list") or [], series.get("time_list") or []
        points = self._parse(
            endpoint,
            list(zip(times, values, strict=False)),
            lambda tv: FearGreedPoint(from_seconds(tv[0]), parse_float(tv[1])),
        )
        if not points:
            raise self._fail(endpoint, ErrorKind.NOT_FOUND, "no fear & greed readings")
        return points


def _coin_market(r: dict[str, Any]) -> CoinMarket:
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


def _perpetual_pair(r: dict[str, Any]) -> PerpetualPair:
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
