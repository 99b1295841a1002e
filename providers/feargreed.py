"""alternative.me's crypto fear & greed index (keyless): 0 extreme fear .. 100 extreme greed, daily."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from providers.errors import ErrorKind
from providers.http import ProviderHttp
from providers.values import from_seconds, parse_float

PROVIDER = "feargreed"
ENDPOINT = "/fng/"
TTLS = {ENDPOINT: 3600}  # published once a day


@dataclass(frozen=True)
class FearGreedReading:
    value: float  # 0-100
    classification: str  # e.g. "Extreme Fear"
    time: datetime


class FearGreedClient:
    def __init__(self, http: ProviderHttp) -> None:
        self.http = http

    async def history(self, limit: int = 1) -> list[FearGreedReading]:
        """Readings, newest first."""
        return await self.http.cached(ENDPOINT, {"limit": limit}, lambda: self._fetch(limit))

    async def _fetch(self, limit: int) -> list[FearGreedReading]:
        _, body = await self.http.get_json(ENDPOINT, {"limit": limit})
        if not isinstance(body, dict):
            raise self._fail(ErrorKind.BAD_PAYLOAD, "response is not a JSON object")
        metadata = body.get("metadata")
        if isinstance(metadata, dict) and metadata.get("error"):
            raise self._fail(ErrorKind.UPSTREAM, f"error: {metadata['error']}")
        data = body.get("data")
        if not isinstance(data, list) or not data:
            raise self._fail(ErrorKind.NOT_FOUND, "no readings")
        try:
            readings = [
                FearGreedReading(
                    parse_float(d["value"]), str(d.get("value_classification", "")), from_seconds(d["timestamp"])
                )
                for d in data
            ]
        except (KeyError, ValueError, TypeError) as exc:
            raise self._fail(ErrorKind.BAD_PAYLOAD, f"unexpected reading shape ({exc})") from None
        self.http.mark_success()
        return readings

    async def latest(self) -> FearGreedReading:
        return (await self.history(1))[0]

    def _fail(self, kind: ErrorKind, message: str) -> Exception:
        return self.http.fail(ENDPOINT, kind, message)
