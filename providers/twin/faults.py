"""Switchable upstream faults: what a provider does when it misbehaves, in its own error shapes."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from enum import StrEnum

from aiohttp import web


class FaultKind(StrEnum):
    LATENCY = "latency"  # answer normally, late
    TIMEOUT = "timeout"  # never answer in time
    RATE_LIMIT = "rate_limit"  # 429 with Retry-After, provider's body
    SERVER_ERROR = "server_error"  # 5xx
    HTML = "html"  # a CDN's HTML error page
    TRUNCATED_JSON = "truncated_json"  # 200, JSON cut in half
    ERROR_ENVELOPE = "error_envelope"  # 200 with the provider's error envelope
    EMPTY = "empty"  # 200, valid envelope, no data


@dataclass
class Fault:
    kind: FaultKind
    latency_ms: float = 0.0
    status: int = 500
    retry_after: float = 1.0
    times: int | None = None  # apply this many times, then heal; None: until cleared


# Bodies in each provider's real error shape (see ../shared/providers/recorded/*/errors).
_RATE_LIMIT_BODY = {
    "okx": {"msg": "Too Many Requests", "code": "50011"},
    "coinglass": {"code": "429", "msg": "Too Many Requests"},
    "coinapi": {"error": "Too many requests - You exceeded number of requests that could be processed concurrently"},
    "lunarcrush": {"error": "Too Many Requests"},
    "feargreed": {"name": "Fear and Greed Index", "data": [], "metadata": {"error": "Too Many Requests"}},
}
_ERROR_ENVELOPE = {
    "okx": {"code": "50001", "msg": "Service temporarily unavailable. Please try again later.", "data": []},
    "coinglass": {"code": "500", "msg": "Internal server error"},
    "coinapi": {"error": "Internal error, please try again later"},
    "lunarcrush": {"error": "Internal error"},
    "feargreed": {"name": "Fear and Greed Index", "data": [], "metadata": {"error": "Service unavailable"}},
}
_EMPTY = {
    "okx": {"code": "0", "msg": "", "data": []},
    "coinglass": {"code": "0", "msg": "success", "data": []},
    "coinapi": {},
    "lunarcrush": {"config": {}, "data": {}},
    "feargreed": {"name": "Fear and Greed Index", "data": [], "metadata": {"error": None}},
}
_HTML = (
    "<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body>"
    "<h1>502 Bad Gateway</h1><p>cloudflare</p></body></html>"
)


def _json(body: object, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=json.dumps(body).encode(), status=status, content_type="application/json", headers=headers)


async def apply_fault(fault: Fault, provider: str, normal: web.Response) -> web.Response | None:
    """The faulty answer, or None to answer ``normal`` (after any latency)."""
    if fault.kind is FaultKind.LATENCY:
        await asyncio.sleep(fault.latency_ms / 1000)
        return None
    if fault.kind is FaultKind.TIMEOUT:
        await asyncio.sleep(fault.latency_ms / 1000 if fault.latency_ms else 60)
        return None
    if fault.kind is FaultKind.RATE_LIMIT:
        return _json(_RATE_LIMIT_BODY[provider], 429, {"Retry-After": f"{fault.retry_after:g}"})
    if fault.kind is FaultKind.SERVER_ERROR:
        return _json({"error": "internal"} if provider != "okx" else {"code": "50001", "msg": "Internal"}, fault.status)
    if fault.kind is FaultKind.HTML:
        return web.Response(text=_HTML, status=fault.status if fault.status != 500 else 502, content_type="text/html")
    if fault.kind is FaultKind.TRUNCATED_JSON:
        body = normal.body if isinstance(normal.body, bytes) else b"{}"
        return web.Response(body=body[: max(1, len(body) // 2)], content_type="application/json")
    if fault.kind is FaultKind.ERROR_ENVELOPE:
        return _json(_ERROR_ENVELOPE[provider])
    return _json(_EMPTY[provider])
