"""Coinglass API v4 (header ``CG-API-KEY``): futures data aggregated across exchanges.

Coinglass answers most errors with HTTP 200 and a STRING ``code`` in the body: "0" is success,
"400" "Invalid API key", "401" "API key missing." or "401" "Upgrade plan" (a valid key whose plan
does not cover the endpoint), "429" rate limited. Numbers arrive as numbers or strings (OI and
funding OHLC). Time series (history endpoints, oldest first) are in coinglass_history.py,
the transport in coinglass_api.py; CoinglassClient has every method.
"""

from __future__ import annotations

from providers.coinglass_api import (
    INTERVALS,
    MAX_LIMIT,
    PROVIDER,
    TTLS,
    auth_headers,
    classify_envelope,
    history_params,
    to_v4_interval,
)
from providers.coinglass_history import CoinglassHistory
from providers.coinglass_models import (
    CoinMarket,
    ExchangeFunding,
    ExchangeOpenInterest,
    ExchangePair,
    Heatmap,
    LiquidationLevel,
    LiquidationOrder,
    PerpetualPair,
    coin_market_from_row,
    perpetual_pair_from_row,
)
from providers.errors import ErrorKind
from providers.values import float_field as _f
from providers.values import from_millis, parse_float

__all__ = [
    "INTERVALS",
    "MAX_LIMIT",
    "PROVIDER",
    "TTLS",
    "CoinglassClient",
    "auth_headers",
    "classify_envelope",
    "history_params",
    "to_v4_interval",
]


class CoinglassClient(CoinglassHistory):
    """Every Coinglass endpoint the product reads; ``http`` None means COINGLASS_API_KEY is not set."""

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
        return self._parse(endpoint, await self._data(endpoint, {"per_page": 100, "page": 1}), coin_market_from_row)

    async def coin_market(self, coin: str) -> CoinMarket:
        for market in await self.coins_markets():
            if market.symbol.upper() == coin:
                return market
        raise self._fail("/api/futures/coins-markets", ErrorKind.NOT_FOUND, f"Coinglass has no market data for {coin}")

    async def pairs_markets(self, coin: str) -> list[PerpetualPair]:
        endpoint = "/api/futures/pairs-markets"
        return self._parse(endpoint, await self._data(endpoint, {"symbol": coin}), perpetual_pair_from_row)

    # ---- liquidations, open interest and funding by exchange -----------------------------------

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
