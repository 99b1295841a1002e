"""OKX v5 public API (no key): perpetual swap candles, ticker, funding, open interest, ratios.

Instruments are USDT-margined perpetual swaps, ``<COIN>-USDT-SWAP``. OKX sends numbers as strings,
rows newest first, and errors either as HTTP 200 with ``code`` != "0" or as HTTP 4xx/429; the 404
for an unknown path even carries a numeric ``code``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from providers.errors import ErrorKind
from providers.http import ProviderHttp
from providers.values import from_millis, parse_float

PROVIDER = "okx"
T = TypeVar("T")
# OKX error codes (https://www.okx.com/docs-v5/en/#error-code): what each means for us.
_CODE_KINDS = {
    "51001": ErrorKind.NOT_FOUND,  # instrument does not exist
    "51000": ErrorKind.NOT_FOUND,  # parameter error on instId
    "52000": ErrorKind.NOT_FOUND,  # no market data
    "50011": ErrorKind.RATE_LIMITED,
    "50061": ErrorKind.RATE_LIMITED,
    "50111": ErrorKind.AUTH,
    "50113": ErrorKind.AUTH,
    "404": ErrorKind.NOT_FOUND,
}


# How long each kind of data stays fresh (seconds): tickers move by the second, candles and
# positioning statistics are published per period (rubik stats every 5 minutes at best).
TTLS = {
    "/api/v5/market/ticker": 5,
    "/api/v5/market/candles": 30,
    "/api/v5/market/history-candles": 300,  # closed bars of the past (a still-open newest one at most)
    "/api/v5/public/funding-rate": 60,
    "/api/v5/public/funding-rate-history": 300,  # settled every 8 h
    "/api/v5/public/open-interest": 60,
    "/api/v5/public/liquidation-orders": 30,
    "/api/v5/rubik/": 300,
}


HISTORY_MAX_LIMIT = 100  # rows per call of history-candles and (per the team's reference) funding-rate-history


def swap_instrument(coin: str) -> str:
    return f"{coin}-USDT-SWAP"


@dataclass(frozen=True)
class Candle:
    time: datetime
    open: float
    high: float
    low: float
    close: float
    volume_usd: float  # volCcyQuote: volume in the quote currency (USDT)
    confirmed: bool  # False while the candle is still open


@dataclass(frozen=True)
class Ticker:
    instrument: str
    last: float
    bid: float
    ask: float
    open_24h: float
    high_24h: float
    low_24h: float
    volume_24h_coin: float
    time: datetime


# The interval every funding rate we hand on is expressed over (OKX's, Binance's usual period).
FUNDING_BASIS_HOURS = 8.0


@dataclass(frozen=True)
class FundingRate:
    instrument: str
    # Percent per 8 hours, whatever the instrument's funding interval: OKX sends a fraction per
    # interval (0.0001 = 0.01 %), and some instruments settle every 1, 2 or 4 hours, so the rate
    # is multiplied by 8 / interval_hours (0.0001 every 4h -> 0.02 per 8h).
    rate_pct: float
    funding_time: datetime
    next_funding_time: datetime | None
    time: datetime
    interval_hours: float = FUNDING_BASIS_HOURS  # the instrument's funding interval, as OKX reported it


def _interval_hours(start_millis: Any, end_millis: Any) -> float:
    """Hours between two funding settlements (OKX's ms timestamps); 8 when the second is missing."""
    if not end_millis:
        return FUNDING_BASIS_HOURS
    hours = (parse_float(end_millis) - parse_float(start_millis)) / 3_600_000
    if not 0 < hours <= 24:
        raise ValueError(f"funding interval of {hours:g} hours")
    return hours


def _funding(
    instrument: str,
    fraction: float,
    interval_hours: float,
    funding_time: datetime,
    next_funding_time: datetime | None,
    time: datetime,
) -> FundingRate:
    pct_per_8h = fraction * 100 * FUNDING_BASIS_HOURS / interval_hours
    return FundingRate(instrument, pct_per_8h, funding_time, next_funding_time, time, interval_hours)


@dataclass(frozen=True)
class OpenInterest:
    instrument: str
    oi_usd: float
    oi_coin: float
    time: datetime


@dataclass(frozen=True)
class OpenInterestPoint:
    time: datetime
    oi_coin: float
    oi_usd: float


@dataclass(frozen=True)
class RatioPoint:
    time: datetime
    ratio: float  # longs / shorts


@dataclass(frozen=True)
class Liquidation:
    position_side: str  # "long" or "short": the side that was liquidated
    price: float  # bankruptcy price
    contracts: float
    time: datetime


class OkxClient:
    def __init__(self, http: ProviderHttp) -> None:
        self.http = http

    async def _data(self, endpoint: str, params: dict[str, Any]) -> list[Any]:
        return await self.http.cached(endpoint, params, lambda: self._fetch(endpoint, params))

    async def _fetch(self, endpoint: str, params: dict[str, Any]) -> list[Any]:
        _, body = await self.http.get_json(endpoint, params)
        if not isinstance(body, dict):
            raise self.http.fail(endpoint, ErrorKind.BAD_PAYLOAD, "response is not a JSON object")
        code = str(body.get("code", ""))
        if code != "0":
            kind = _CODE_KINDS.get(code, ErrorKind.UPSTREAM)
            message = f"code {code}: {body.get('msg') or 'error'}"
            if kind is ErrorKind.NOT_FOUND and "instId" in params:
                message = f"no data for {params['instId']} ({message})"
            raise self.http.fail(endpoint, kind, message, provider_code=code)
        data = body.get("data")
        if not isinstance(data, list):
            raise self.http.fail(endpoint, ErrorKind.BAD_PAYLOAD, "`data` is not a list")
        if not data:
            raise self.http.fail(endpoint, ErrorKind.NOT_FOUND, f"empty data for {params.get('instId', params)}")
        self.http.mark_success()
        return data

    def _rows(self, endpoint: str, rows: list[Any], parse: Callable[[Any], T]) -> list[T]:
        try:
            return [parse(row) for row in rows]
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            raise self.http.fail(endpoint, ErrorKind.BAD_PAYLOAD, f"unexpected row shape ({exc})") from None

    async def candles(self, coin: str, bar: str = "1H", limit: int = 100) -> list[Candle]:
        """Candles of the swap, newest first."""
        endpoint = "/api/v5/market/candles"
        data = await self._data(endpoint, {"instId": swap_instrument(coin), "bar": bar, "limit": limit})
        return self._rows(endpoint, data, _candle)

    async def history_candles(
        self,
        coin: str,
        bar: str = "1H",
        after_ms: int | None = None,
        before_ms: int | None = None,
        limit: int = HISTORY_MAX_LIMIT,
    ) -> list[Candle]:
        """Older candles of the swap, NEWEST FIRST, at most 100 per call.

        OKX's cursors are exclusive timestamps on the bar's open: ``after_ms`` asks for bars older
        than it, ``before_ms`` for bars newer than it; None sends nothing. One window [a, b] is
        ``after_ms=b + 1, before_ms=a - 1`` (providers/history.py: okx_cursors).
        """
        endpoint = "/api/v5/market/history-candles"
        params = {"instId": swap_instrument(coin), "bar": bar, **_paging(limit, after_ms, before_ms)}
        return self._rows(endpoint, await self._data(endpoint, params), _candle)

    async def ticker(self, coin: str) -> Ticker:
        endpoint = "/api/v5/market/ticker"
        data = await self._data(endpoint, {"instId": swap_instrument(coin)})
        return self._rows(
            endpoint,
            data[:1],
            lambda t: Ticker(
                t["instId"],
                parse_float(t["last"]),
                parse_float(t["bidPx"]),
                parse_float(t["askPx"]),
                parse_float(t["open24h"]),
                parse_float(t["high24h"]),
                parse_float(t["low24h"]),
                parse_float(t["volCcy24h"]),
                from_millis(t["ts"]),
            ),
        )[0]

    async def funding_rate(self, coin: str) -> FundingRate:
        endpoint = "/api/v5/public/funding-rate"
        data = await self._data(endpoint, {"instId": swap_instrument(coin)})
        return self._rows(
            endpoint,
            data[:1],
            lambda f: _funding(
                f["instId"],
                parse_float(f["fundingRate"]),
                # fundingTime is this period's settlement, nextFundingTime the one after it.
                _interval_hours(f["fundingTime"], f.get("nextFundingTime")),
                from_millis(f["fundingTime"]),
                from_millis(f["nextFundingTime"]) if f.get("nextFundingTime") else None,
                from_millis(f.get("ts") or f["fundingTime"]),
            ),
        )[0]

    async def funding_rate_history(
        self, coin: str, limit: int = 30, after_ms: int | None = None, before_ms: int | None = None
    ) -> list[FundingRate]:
        """Settled funding rates, NEWEST FIRST; ``after_ms``/``before_ms`` are exclusive cursors on
        ``fundingTime`` as in history_candles. A rate's interval is the gap since the settlement
        before it (percent per 8h after conversion)."""
        endpoint = "/api/v5/public/funding-rate-history"
        params = {"instId": swap_instrument(coin), **_paging(limit, after_ms, before_ms)}
        data = await self._data(endpoint, params)

        def parse(k: int) -> FundingRate:
            f = data[k]
            if k + 1 < len(data):
                interval = _interval_hours(data[k + 1]["fundingTime"], f["fundingTime"])
            elif k > 0:  # the oldest row: the gap after it
                interval = _interval_hours(f["fundingTime"], data[k - 1]["fundingTime"])
            else:
                interval = FUNDING_BASIS_HOURS
            settled = from_millis(f["fundingTime"])
            fraction = parse_float(f.get("realizedRate") or f["fundingRate"])
            return _funding(f["instId"], fraction, interval, settled, None, settled)

        return self._rows(endpoint, list(range(len(data))), parse)

    async def open_interest(self, coin: str) -> OpenInterest:
        endpoint = "/api/v5/public/open-interest"
        data = await self._data(endpoint, {"instType": "SWAP", "instId": swap_instrument(coin)})
        return self._rows(
            endpoint,
            data[:1],
            lambda o: OpenInterest(o["instId"], parse_float(o["oiUsd"]), parse_float(o["oiCcy"]), from_millis(o["ts"])),
        )[0]

    async def swap_coins(self) -> list[str]:
        """Every coin with a USDT or USD perpetual swap on OKX (from the open interest of all swaps,
        one public call): the coin universe when Coinglass's list is not available (no key)."""
        endpoint = "/api/v5/public/open-interest"
        data = await self._data(endpoint, {"instType": "SWAP"})
        ids = self._rows(endpoint, data, lambda o: str(o["instId"]))
        coins = {parts[0] for parts in (i.upper().split("-") for i in ids) if len(parts) == 3 and parts[2] == "SWAP"}
        return sorted(coins)

    async def open_interest_history(self, coin: str, period: str = "1H", limit: int = 25) -> list[OpenInterestPoint]:
        """Open interest history, newest first."""
        endpoint = "/api/v5/rubik/stat/contracts/open-interest-history"
        data = await self._data(endpoint, {"instId": swap_instrument(coin), "period": period, "limit": limit})
        return self._rows(
            endpoint, data, lambda r: OpenInterestPoint(from_millis(r[0]), parse_float(r[2]), parse_float(r[3]))
        )

    async def _ratios(self, endpoint: str, coin: str, period: str, limit: int) -> list[RatioPoint]:
        data = await self._data(endpoint, {"instId": swap_instrument(coin), "period": period, "limit": limit})
        return self._rows(endpoint, data, lambda r: RatioPoint(from_millis(r[0]), parse_float(r[1])))

    async def long_short_account_ratio(self, coin: str, period: str = "1H", limit: int = 24) -> list[RatioPoint]:
        """All accounts: accounts long / accounts short, newest first."""
        return await self._ratios("/api/v5/rubik/stat/contracts/long-short-account-ratio-contract", coin, period, limit)

    async def top_trader_account_ratio(self, coin: str, period: str = "1H", limit: int = 24) -> list[RatioPoint]:
        return await self._ratios(
            "/api/v5/rubik/stat/contracts/long-short-account-ratio-contract-top-trader", coin, period, limit
        )

    async def top_trader_position_ratio(self, coin: str, period: str = "1H", limit: int = 24) -> list[RatioPoint]:
        """Top traders by position size: long positions / short positions, newest first."""
        return await self._ratios(
            "/api/v5/rubik/stat/contracts/long-short-position-ratio-contract-top-trader", coin, period, limit
        )

    async def liquidations(self, coin: str, limit: int = 100) -> list[Liquidation]:
        """Recent filled liquidation orders of the coin's USDT swaps, newest first."""
        endpoint = "/api/v5/public/liquidation-orders"
        data = await self._data(
            endpoint, {"instType": "SWAP", "uly": f"{coin}-USDT", "state": "filled", "limit": limit}
        )
        details = [d for entry in data if isinstance(entry, dict) for d in entry.get("details", [])]
        return self._rows(
            endpoint,
            details,
            lambda d: Liquidation(d["posSide"], parse_float(d["bkPx"]), parse_float(d["sz"]), from_millis(d["ts"])),
        )


def _candle(r: Any) -> Candle:
    # [ts, o, h, l, c, vol, volCcy, volCcyQuote, confirm]
    return Candle(
        from_millis(r[0]),
        parse_float(r[1]),
        parse_float(r[2]),
        parse_float(r[3]),
        parse_float(r[4]),
        parse_float(r[7]),
        r[8] == "1",
    )


def _paging(limit: int, after_ms: int | None, before_ms: int | None) -> dict[str, Any]:
    if not 1 <= limit <= HISTORY_MAX_LIMIT:
        raise ValueError(f"limit must be between 1 and {HISTORY_MAX_LIMIT}, got {limit}")
    params: dict[str, Any] = {"limit": limit}
    if after_ms is not None:
        params["after"] = int(after_ms)
    if before_ms is not None:
        params["before"] = int(before_ms)
    return params
