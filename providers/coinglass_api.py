"""Coinglass API v4 transport: envelope, error classification, intervals, history parameters.

Coinglass answers most errors with HTTP 200 and a STRING ``code`` in the body: "0" is success,
"400" "Invalid API key", "401" "API key missing." or "401" "Upgrade plan" (a valid key whose plan
does not cover the endpoint), "429" rate limited. An empty ``data`` is raised as NOT_FOUND.
The client is split by subject: this module (transport), coinglass_history.py (time series),
coinglass.py (CoinglassClient: markets, liquidations, reference data; what callers import).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from providers.errors import ErrorKind, ProviderError
from providers.http import ProviderHttp

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
def auth_headers(key: str) -> dict[str, str]:
    """Coinglass v4 reads the key from the ``CG-API-KEY`` header."""
    return {"CG-API-KEY": key}


TTLS = {
    # /debug/premium's probe outcomes (service/mappers/market.py): plans change rarely, and a probe
    # asked again must not spend the budget again.
    "probe:": 300,
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
    "/api/futures/price/": 60,
}
MAX_LIMIT = 1000  # rows per history call (every history endpoint's documented maximum)


def to_v4_interval(interval: str) -> str:
    """v4 spelling of an interval; ValueError names the allowed values."""
    try:
        return INTERVALS[interval.strip().lower()]
    except KeyError:
        raise ValueError(
            f"interval must be one of h1, h4, h8, h12, d1 (or 1h, 4h, 8h, 12h, 1d), got {interval!r}"
        ) from None


def history_params(interval: str, limit: int, start_ms: int | None, end_ms: int | None) -> dict[str, Any]:
    """The query parameters every history endpoint shares; ValueError names a bad one."""
    if not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit must be between 1 and {MAX_LIMIT}, got {limit}")
    params: dict[str, Any] = {"interval": to_v4_interval(interval), "limit": limit}
    if start_ms is not None:
        params["start_time"] = int(start_ms)
    if end_ms is not None:
        params["end_time"] = int(end_ms)
    if start_ms is not None and end_ms is not None and start_ms > end_ms:
        raise ValueError(f"start_ms {start_ms} is after end_ms {end_ms}")
    return params


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


class CoinglassBase:
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
