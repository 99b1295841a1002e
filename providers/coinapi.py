"""CoinAPI REST v1: spot exchange rate (header ``X-CoinAPI-Key``).

Errors are ``{"error": "..."}`` with 400, 401 (bad key), 403 (not in plan), 429 (limits) and the
non-standard 550 ("no data for that item"), which means not found, not an outage.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from providers.errors import ErrorKind, ProviderError
from providers.http import ProviderHttp
from providers.values import parse_float

PROVIDER = "coinapi"
TTLS = {"/v1/exchangerate/": 5}
STATUS_KINDS = {403: ErrorKind.PLAN, 550: ErrorKind.NOT_FOUND}


def auth_headers(key: str) -> dict[str, str]:
    """CoinAPI's key header (the HTTP layer redacts the key from anything it logs or raises)."""
    return {"X-CoinAPI-Key": key}


@dataclass(frozen=True)
class ExchangeRate:
    base: str
    quote: str
    rate: float
    time: datetime


class CoinApiClient:
    def __init__(self, http: ProviderHttp | None) -> None:
        self.http = http  # None: COINAPI_KEY is not set

    async def exchange_rate(self, base: str, quote: str = "USD") -> ExchangeRate:
        endpoint = f"/v1/exchangerate/{base}/{quote}"
        if self.http is None:
            raise ProviderError(PROVIDER, endpoint, ErrorKind.NOT_CONFIGURED, "COINAPI_KEY is not set")
        return await self.http.cached(endpoint, None, lambda: self._fetch(endpoint))

    async def _fetch(self, endpoint: str) -> ExchangeRate:
        assert self.http is not None
        _, body = await self.http.get_json(endpoint)
        if isinstance(body, dict) and "error" in body:
            raise self.http.fail(endpoint, ErrorKind.UPSTREAM, f"error: {body['error']}")
        try:
            if not isinstance(body, dict):
                raise ValueError("not an object")
            rate = ExchangeRate(
                str(body["asset_id_base"]),
                str(body["asset_id_quote"]),
                parse_float(body["rate"]),
                datetime.fromisoformat(str(body["time"])),
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise self.http.fail(endpoint, ErrorKind.BAD_PAYLOAD, f"unexpected response shape ({exc})") from None
        self.http.mark_success()
        return rate
