"""Coinglass v4 time series: liquidations, positioning ratios, price, open interest, funding, fear & greed.

History endpoints return rows OLDEST FIRST. Every history method takes ``start_ms``/``end_ms``
(sent as ``start_time``/``end_time``, milliseconds, inclusive bounds on a row's ``time``: the
bar's open) and ``limit`` (1..1000 rows per call; providers/history.py pages a longer range).
``None`` sends nothing: Coinglass answers the newest rows. A range without rows is ``data: []``,
raised as ErrorKind.NOT_FOUND like any empty answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from providers.coinglass_api import CoinglassBase, history_params
from providers.coinglass_models import FearGreedPoint, LiquidationBucket, Ohlc, RatioPoint
from providers.errors import ErrorKind
from providers.values import float_field as _f
from providers.values import from_epoch, from_millis, parse_float


class CoinglassHistory(CoinglassBase):
    async def liquidation_aggregated_history(
        self,
        coin: str,
        exchanges: Sequence[str],
        interval: str = "1h",
        limit: int = 24,
        start_ms: int | None = None,
        end_ms: int | None = None,
    ) -> list[LiquidationBucket]:
        """Long/short liquidations summed over ``exchanges``, oldest first."""
        endpoint = "/api/futures/liquidation/aggregated-history"
        params = {
            "symbol": coin,
            "exchange_list": ",".join(exchanges),
            **history_params(interval, limit, start_ms, end_ms),
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

    # ---- positioning ---------------------------------------------------------------------------

    async def _ratio_history(
        self,
        endpoint: str,
        prefix: str,
        pair: str,
        exchange: str,
        interval: str,
        limit: int,
        start_ms: int | None,
        end_ms: int | None,
    ) -> list[RatioPoint]:
        params = {"exchange": exchange, "symbol": pair, **history_params(interval, limit, start_ms, end_ms)}
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
        self,
        pair: str,
        exchange: str,
        interval: str = "1h",
        limit: int = 24,
        start_ms: int | None = None,
        end_ms: int | None = None,
    ) -> list[RatioPoint]:
        """All accounts on one exchange pair (e.g. Binance BTCUSDT), oldest first."""
        endpoint = "/api/futures/global-long-short-account-ratio/history"
        return await self._ratio_history(endpoint, "global_account", pair, exchange, interval, limit, start_ms, end_ms)

    async def top_long_short_account_ratio(
        self,
        pair: str,
        exchange: str,
        interval: str = "1h",
        limit: int = 24,
        start_ms: int | None = None,
        end_ms: int | None = None,
    ) -> list[RatioPoint]:
        endpoint = "/api/futures/top-long-short-account-ratio/history"
        return await self._ratio_history(endpoint, "top_account", pair, exchange, interval, limit, start_ms, end_ms)

    async def top_long_short_position_ratio(
        self,
        pair: str,
        exchange: str,
        interval: str = "1h",
        limit: int = 24,
        start_ms: int | None = None,
        end_ms: int | None = None,
    ) -> list[RatioPoint]:
        endpoint = "/api/futures/top-long-short-position-ratio/history"
        return await self._ratio_history(endpoint, "top_position", pair, exchange, interval, limit, start_ms, end_ms)

    # ---- open interest and funding -------------------------------------------------------------

    async def _ohlc(self, endpoint: str, params: dict[str, Any]) -> list[Ohlc]:
        return self._parse(
            endpoint,
            await self._data(endpoint, params),
            lambda r: Ohlc(
                from_millis(r["time"]),
                _f(r, "open"),
                _f(r, "high"),
                _f(r, "low"),
                _f(r, "close"),
                _f(r, "volume_usd") if "volume_usd" in r else None,
            ),
        )

    async def price_history(
        self,
        pair: str,
        exchange: str,
        interval: str = "1h",
        limit: int = 24,
        start_ms: int | None = None,
        end_ms: int | None = None,
    ) -> list[Ohlc]:
        """Price OHLC (USD) and ``volume_usd`` of one exchange pair (e.g. Binance BTCUSDT), oldest first."""
        return await self._ohlc(
            "/api/futures/price/history",
            {"exchange": exchange, "symbol": pair, **history_params(interval, limit, start_ms, end_ms)},
        )

    async def open_interest_history(
        self,
        coin: str,
        interval: str = "1h",
        limit: int = 25,
        start_ms: int | None = None,
        end_ms: int | None = None,
    ) -> list[Ohlc]:
        """Aggregated open interest OHLC in USD over all exchanges, oldest first."""
        return await self._ohlc(
            "/api/futures/open-interest/aggregated-history",
            {"symbol": coin, **history_params(interval, limit, start_ms, end_ms), "unit": "usd"},
        )

    async def open_interest_stablecoin_history(
        self,
        coin: str,
        exchanges: Sequence[str],
        interval: str = "1h",
        limit: int = 24,
        start_ms: int | None = None,
        end_ms: int | None = None,
    ) -> list[Ohlc]:
        """Open interest OHLC of the coin's stablecoin-margined contracts on ``exchanges``, oldest first.

        Units: the real capture (recorded/coinglass/history) holds coin QUANTITY (~88k for BTC on
        Binance), although the endpoint has no unit parameter and one might expect USD. Read
        percent changes, which do not depend on the unit.
        """
        return await self._ohlc(
            "/api/futures/open-interest/aggregated-stablecoin-history",
            {"symbol": coin, "exchange_list": ",".join(exchanges), **history_params(interval, limit, start_ms, end_ms)},
        )

    async def funding_oi_weighted_history(
        self,
        coin: str,
        interval: str = "8h",
        limit: int = 30,
        start_ms: int | None = None,
        end_ms: int | None = None,
    ) -> list[Ohlc]:
        """OI-weighted funding rate OHLC in percent per 8h, oldest first.

        The reference table says this endpoint's start_time/end_time are in seconds, its example is
        in milliseconds, like every other history endpoint: milliseconds are sent.
        """
        return await self._ohlc(
            "/api/futures/funding-rate/oi-weight-history",
            {"symbol": coin, **history_params(interval, limit, start_ms, end_ms)},
        )

    async def funding_vol_weighted_history(
        self,
        coin: str,
        interval: str = "8h",
        limit: int = 30,
        start_ms: int | None = None,
        end_ms: int | None = None,
    ) -> list[Ohlc]:
        return await self._ohlc(
            "/api/futures/funding-rate/vol-weight-history",
            {"symbol": coin, **history_params(interval, limit, start_ms, end_ms)},
        )

    async def fear_greed_history(self, last: int | None = None) -> list[FearGreedPoint]:
        """Fear & greed readings (0-100, daily), oldest first; only the newest ``last`` when given.

        The endpoint answers the whole index since 2018 (~2,900 readings): parsing them all costs
        ~10 ms, which a live signal, needing only the newest, should not pay on every computation.

        The docs show ``data`` as a list holding one object of parallel lists; a public client reads
        it as the object itself. Both are accepted (the reference marks the shape unconfirmed).
        Times: the docs show epoch seconds, the real capture in recorded/coinglass/history has
        milliseconds; both are read.
        """
        endpoint = "/api/index/fear-greed-history"
        data = await self._data(endpoint)
        series = data[0] if isinstance(data, list) and data else data
        if not isinstance(series, dict):
            raise self._fail(endpoint, ErrorKind.BAD_PAYLOAD, "unexpected fear & greed shape")
        values, times = series.get("data_list") or [], series.get("time_list") or []
        pairs = list(zip(times, values, strict=False))
        points = self._parse(
            endpoint,
            pairs[-last:] if last else pairs,
            lambda tv: FearGreedPoint(from_epoch(tv[0]), parse_float(tv[1])),
        )
        if not points:
            raise self._fail(endpoint, ErrorKind.NOT_FOUND, "no fear & greed readings")
        return points
