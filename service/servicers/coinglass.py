"""CoinglassService: validate the request, call the Coinglass client, map the result.

Missing key -> FAILED_PRECONDITION "COINGLASS_API_KEY is not set"; plan not covering an endpoint
-> PERMISSION_DENIED naming it; unknown coin -> NOT_FOUND; bad interval or symbol ->
INVALID_ARGUMENT naming the allowed values.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import grpc
from cryptosignals.v1 import coinglass_pb2, coinglass_pb2_grpc

from providers.coinglass import CoinglassClient, to_v4_interval
from providers.errors import ProviderError
from service.mappers import coinglass as mapping
from service.rpc.status import coin_or_abort
from signals.coin_universe import CoinUniverse

T = TypeVar("T")
HISTORY_BARS = 48
HISTORY_INTERVALS = ("1h", "4h", "8h", "12h", "1d")
FUNDING_INTERVALS = ("4h", "8h")
SEED_SPELLING = {"1h": "h1", "4h": "h4", "8h": "h8", "12h": "h12", "1d": "d1"}


class CoinglassServicer(coinglass_pb2_grpc.CoinglassServiceServicer):
    def __init__(
        self, client: CoinglassClient, exchange: str, exchanges: Sequence[str], universe: CoinUniverse
    ) -> None:
        self._client = client
        self._universe = universe
        self._exchange = exchange
        self._exchanges = tuple(exchanges)

    async def _run(self, context: grpc.aio.ServicerContext, call: Callable[[], Awaitable[T]]) -> T:
        return await call()  # a ProviderError rises to the guard, which answers it (rpc/status.py)

    async def _symbol(self, raw: str, context: grpc.aio.ServicerContext) -> str:
        return await coin_or_abort(raw, context, self._universe)

    @staticmethod
    async def _interval(raw: str, default: str, allowed: tuple[str, ...], context: grpc.aio.ServicerContext) -> str:
        """v4 spelling of ``raw`` (or the default); INVALID_ARGUMENT naming the allowed values otherwise."""
        try:
            v4 = to_v4_interval(raw or default)
        except ValueError:
            v4 = ""
        if v4 not in allowed:
            seed = ", ".join(SEED_SPELLING[a] for a in allowed)
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"interval must be one of {seed} (or {', '.join(allowed)}), got {raw[:32]!r}",  # echo a bounded part
            )
        return v4

    # ---- markets -------------------------------------------------------------------------------

    async def ListMarkets(self, request: Any, context: grpc.aio.ServicerContext) -> coinglass_pb2.CoinMarketList:
        markets = await self._run(context, self._client.coins_markets)
        return coinglass_pb2.CoinMarketList(markets=[mapping.coin_market(x) for x in markets])

    async def GetCoinMarket(self, request: Any, context: grpc.aio.ServicerContext) -> coinglass_pb2.CoinMarket:
        coin = await self._symbol(request.symbol, context)
        return mapping.coin_market(await self._run(context, lambda: self._client.coin_market(coin)))

    async def GetPerpetualMarkets(
        self, request: Any, context: grpc.aio.ServicerContext
    ) -> coinglass_pb2.PerpetualMarketList:
        coin = await self._symbol(request.symbol, context)
        pairs = await self._run(context, lambda: self._client.pairs_markets(coin))
        ordered = sorted(pairs, key=lambda p: p.open_interest_usd, reverse=True)
        return coinglass_pb2.PerpetualMarketList(symbol=coin, pairs=[mapping.perpetual_pair(p) for p in ordered])

    # ---- liquidations --------------------------------------------------------------------------

    async def _liquidations(
        self, coin: str, include_orders: bool, include_map: bool
    ) -> coinglass_pb2.LiquidationSummary:
        buckets = await self._client.liquidation_aggregated_history(coin, self._exchanges, "1h", 24)
        summary = coinglass_pb2.LiquidationSummary(
            symbol=coin, exchanges=list(self._exchanges), windows=mapping.liquidation_windows(buckets)
        )
        if include_orders:
            orders = await self._client.liquidation_orders(coin, self._exchange)
            summary.orders.extend(mapping.liquidation_order(o) for o in orders)
        if include_map:
            levels = await self._client.liquidation_map(coin)
            summary.map.extend(mapping.level(x) for x in levels[:100])
        return summary

    async def GetLiquidations(
        self, request: Any, context: grpc.aio.ServicerContext
    ) -> coinglass_pb2.LiquidationSummary:
        coin = await self._symbol(request.symbol, context)
        return await self._run(context, lambda: self._liquidations(coin, request.include_orders, request.include_map))

    async def GetLiquidationHeatmap(
        self, request: Any, context: grpc.aio.ServicerContext
    ) -> coinglass_pb2.LiquidationHeatmap:
        coin = await self._symbol(request.symbol, context)
        heatmap = await self._run(context, lambda: self._client.liquidation_heatmap(coin))
        price = heatmap.current_price
        return coinglass_pb2.LiquidationHeatmap(
            symbol=coin,
            current_price=price,
            clusters=[
                coinglass_pb2.LiquidationCluster(
                    price=x.price,
                    liquidation_usd=round(x.liquidation_usd, 2),
                    distance_pct=round((x.price / price - 1) * 100, 3) if price else 0.0,
                )
                for x in heatmap.levels[:50]
            ],
        )

    # ---- positioning, open interest, funding ---------------------------------------------------

    async def _long_short(self, coin: str, interval: str) -> coinglass_pb2.LongShortRatio:
        pair = f"{coin}USDT"
        global_, top_account, top_position = await asyncio.gather(
            self._client.global_long_short_account_ratio(pair, self._exchange, interval, HISTORY_BARS),
            self._client.top_long_short_account_ratio(pair, self._exchange, interval, HISTORY_BARS),
            self._client.top_long_short_position_ratio(pair, self._exchange, interval, HISTORY_BARS),
        )
        return coinglass_pb2.LongShortRatio(
            symbol=coin,
            exchange=self._exchange,
            pair=pair,
            interval=interval,
            global_account=mapping.ratio_series(global_),
            top_trader_account=mapping.ratio_series(top_account),
            top_trader_position=mapping.ratio_series(top_position),
        )

    async def GetLongShortRatio(self, request: Any, context: grpc.aio.ServicerContext) -> coinglass_pb2.LongShortRatio:
        coin = await self._symbol(request.symbol, context)
        interval = await self._interval(request.interval, "h1", HISTORY_INTERVALS, context)
        return await self._run(context, lambda: self._long_short(coin, interval))

    async def _funding(self, coin: str, interval: str) -> coinglass_pb2.FundingRates:
        oi_weighted, vol_weighted, exchanges = await asyncio.gather(
            self._client.funding_oi_weighted_history(coin, interval, 30),
            self._client.funding_vol_weighted_history(coin, interval, 30),
            self._client.funding_exchanges(coin),
        )
        return coinglass_pb2.FundingRates(
            symbol=coin,
            interval=interval,
            oi_weighted_rate=oi_weighted[-1].close,
            volume_weighted_rate=vol_weighted[-1].close,
            exchanges=[mapping.exchange_funding(x) for x in exchanges],
            oi_weighted_history=mapping.ohlc(oi_weighted),
            volume_weighted_history=mapping.ohlc(vol_weighted),
        )

    async def GetFundingRate(self, request: Any, context: grpc.aio.ServicerContext) -> coinglass_pb2.FundingRates:
        coin = await self._symbol(request.symbol, context)
        interval = await self._interval(request.interval, "h8", FUNDING_INTERVALS, context)
        return await self._run(context, lambda: self._funding(coin, interval))

    async def _open_interest(self, coin: str, interval: str) -> coinglass_pb2.OpenInterest:
        history, exchanges = await asyncio.gather(
            self._client.open_interest_history(coin, interval, HISTORY_BARS),
            self._client.open_interest_exchanges(coin),
        )
        first, last = history[0].close, history[-1].close
        return coinglass_pb2.OpenInterest(
            symbol=coin,
            interval=interval,
            open_interest_usd=last,
            change_percent=round((last / first - 1) * 100, 3) if first else 0.0,
            history=mapping.ohlc(history),
            exchanges=[
                mapping.exchange_open_interest(x)
                for x in sorted(exchanges, key=lambda e: e.open_interest_usd, reverse=True)
            ],
        )

    async def GetOpenInterest(self, request: Any, context: grpc.aio.ServicerContext) -> coinglass_pb2.OpenInterest:
        coin = await self._symbol(request.symbol, context)
        interval = await self._interval(request.interval, "h1", HISTORY_INTERVALS, context)
        return await self._run(context, lambda: self._open_interest(coin, interval))

    # ---- reference data ------------------------------------------------------------------------

    async def ListSupportedCoins(self, request: Any, context: grpc.aio.ServicerContext) -> coinglass_pb2.SupportedCoins:
        return coinglass_pb2.SupportedCoins(coins=await self._run(context, self._client.supported_coins))

    async def ListExchanges(self, request: Any, context: grpc.aio.ServicerContext) -> coinglass_pb2.ExchangeList:
        pairs = await self._run(context, self._client.exchange_pairs)
        return coinglass_pb2.ExchangeList(
            exchanges=[
                coinglass_pb2.Exchange(
                    name=name,
                    pair_count=len(items),
                    pairs=[
                        coinglass_pb2.ExchangePair(
                            instrument_id=p.instrument_id, base_asset=p.base_asset, quote_asset=p.quote_asset
                        )
                        for p in items
                    ],
                )
                for name, items in pairs.items()
            ]
        )

    # ---- dashboard -----------------------------------------------------------------------------

    async def GetDashboard(self, request: Any, context: grpc.aio.ServicerContext) -> coinglass_pb2.Dashboard:
        coin = await self._symbol(request.symbol, context)
        parts: dict[str, Awaitable[Any]] = {
            "market": self._client.coin_market(coin),
            "liquidations": self._liquidations(coin, False, False),
            "long_short_ratio": self._long_short(coin, "1h"),
            "open_interest": self._open_interest(coin, "1h"),
            "funding": self._funding(coin, "8h"),
        }
        results = await asyncio.gather(*parts.values(), return_exceptions=True)
        dashboard = coinglass_pb2.Dashboard(symbol=coin)
        failures = []
        for name, result in zip(parts, results, strict=True):
            if isinstance(result, ProviderError):
                failures.append(result)
                dashboard.failures.append(
                    coinglass_pb2.PartFailure(part=name, error_kind=result.kind.value, message=result.message)
                )
            elif isinstance(result, BaseException):
                raise result
            elif name == "market":
                dashboard.market.CopyFrom(mapping.coin_market(result))
            else:
                getattr(dashboard, name).CopyFrom(result)
        if len(failures) == len(parts):
            # Nothing to show: answer with the status of the first failure (missing key, plan ...).
            raise failures[0]
        return dashboard
