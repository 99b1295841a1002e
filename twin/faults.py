"""Switchable faults: what a provider does when it is slow, limited, down or broken.

A fault is set per provider and per endpoint path (as the provider spells it, without the twin's
"/<provider>" prefix) or "*" for every endpoint. An exact endpoint wins over "*"; provider "*"
applies to every provider. `times` makes a fault transient (apply N times, then it is gone), which
is how tests prove that retries recover.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from twin.reply import JSON, Reply, json_reply


class FaultKind(StrEnum):
    """Plain strings work everywhere a kind is expected ("rate_limit" == FaultKind.RATE_LIMIT)."""

    LATENCY = "latency"  # delay latency_ms, then answer normally
    TIMEOUT = "timeout"  # answer nothing for `seconds` (30 s) or until the client leaves
    RATE_LIMIT = "rate_limit"  # HTTP 429 + Retry-After, the provider's 429 body
    SERVER_ERROR = "server_error"  # HTTP 500 (or `status`: 502, 503...)
    HTML = "html"  # Cloudflare-style HTML page, HTTP 502 (or `status`, e.g. 200)
    TRUNCATED_JSON = "truncated_json"  # HTTP 200 application/json, the normal body cut in half
    ERROR_ENVELOPE = "error_envelope"  # HTTP 200 with the provider's error envelope (`code` picks which)
    EMPTY = "empty"  # HTTP 200, valid envelope, empty data
    UNSHIFTED = "unshifted"  # the normal answer from the data as recorded, not moved to the present: old data
    # Echoes the caller's key (every key header it sent) back: in the error body, in response
    # headers and, with a 3xx `status`, in the redirect's Location. HTTP 401 unless `status` says
    # otherwise (200: the provider's error envelope). Proves a key never travels further.
    ECHO_KEY = "echo_key"


FAULT_KINDS: frozenset[str] = frozenset(k.value for k in FaultKind)
PROVIDERS = ("coinglass", "okx", "coinapi", "lunarcrush", "feargreed")
TIMEOUT_SECONDS = 30.0  # longer than any client timeout; the hang also ends when the client leaves


@dataclass
class Fault:
    provider: str
    endpoint: str
    kind: FaultKind
    latency_ms: float = 0.0
    status: int | None = None
    retry_after: int | None = None
    times: int | None = None  # None: until cleared
    code: str | None = None  # error_envelope: which provider code to answer (e.g. OKX "52000")
    seconds: float = TIMEOUT_SECONDS  # timeout: how long to hang

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "kind": self.kind.value}


def normalise_endpoint(provider: str, endpoint: str) -> str:
    if endpoint == "*":
        return endpoint
    path = "/" + endpoint.lstrip("/")
    prefix = f"/{provider}/"
    if provider != "*" and path.startswith(prefix):
        path = path[len(prefix) - 1 :]
    # "/fng/" and "/fng" are the same endpoint for matching purposes.
    return path.rstrip("/") or "/"


def make_fault(
    provider: str,
    endpoint: str = "*",
    kind: str = "server_error",
    latency_ms: float = 0.0,
    status: int | None = None,
    retry_after: int | None = None,
    times: int | None = None,
    code: str | None = None,
    seconds: float = TIMEOUT_SECONDS,
) -> Fault:
    if provider != "*" and provider not in PROVIDERS:
        raise ValueError(f"unknown provider {provider!r}; expected one of {', '.join(PROVIDERS)} or '*'")
    if kind not in FAULT_KINDS:
        raise ValueError(f"unknown fault kind {kind!r}; expected one of {', '.join(sorted(FAULT_KINDS))}")
    if times is not None and times < 1:
        raise ValueError("times must be >= 1 (or None for a permanent fault)")
    return Fault(
        provider,
        normalise_endpoint(provider, endpoint),
        FaultKind(kind),
        float(latency_ms or 0.0),
        status,
        retry_after,
        times,
        code,
        float(seconds),
    )


class FaultTable:
    """Faults by (provider, endpoint). Lookups are dict hits: cheap enough for benchmarks."""

    def __init__(self) -> None:
        self._faults: dict[tuple[str, str], Fault] = {}

    def set(self, fault: Fault) -> None:
        self._faults[(fault.provider, fault.endpoint)] = fault

    def clear(self) -> None:
        self._faults.clear()

    def list(self) -> list[Fault]:
        return list(self._faults.values())

    def take(self, provider: str, path: str) -> Fault | None:
        """The fault for this request, consuming one of its `times`."""
        if not self._faults:
            return None
        endpoint = path.rstrip("/") or "/"
        for key in ((provider, endpoint), (provider, "*"), ("*", endpoint), ("*", "*")):
            fault = self._faults.get(key)
            if fault is not None:
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times <= 0:
                        del self._faults[key]
                return fault
        return None


CLOUDFLARE_HTML = """<!DOCTYPE html>
<html lang="en-US"><head><title>{host} | {status}: Bad gateway</title>
<meta charset="UTF-8" /><meta name="robots" content="noindex, nofollow" /></head>
<body><div id="cf-wrapper"><div id="cf-error-details" class="cf-error-details-wrapper">
<h1><span class="cf-error-type">Error</span> <span class="cf-error-code">{status}</span></h1>
<h2 class="cf-subheadline">Bad gateway</h2>
<p>The web server reported a bad gateway error.</p>
<div class="cf-footer-item">Cloudflare Ray ID: <strong>8e4f2a1b3c5d6e7f</strong></div>
<div class="cf-footer-item">Performance &amp; security by Cloudflare</div>
</div></div></body></html>
"""
HOSTS = {
    "coinglass": "open-api-v4.coinglass.com",
    "okx": "www.okx.com",
    "coinapi": "rest.coinapi.io",
    "lunarcrush": "lunarcrush.com",
    "feargreed": "api.alternative.me",
}
OKX_ENVELOPES = {
    "50011": "Rate limit reached. Please refer to API documentation and throttle requests accordingly.",
    "52000": "No market data available",
    "51001": "Instrument ID, Instrument ID code, or Spread ID doesn't exist.",
    "50001": "Service temporarily unavailable. Please try again later.",
    "50026": "System error. Try again later.",
}
COINGLASS_ENVELOPES = {
    "500": "Internal server error",
    "429": "Too Many Requests",
    "401": "Upgrade plan",
    "400": "Invalid API key provided",
}


def rate_limited(provider: str, retry_after: int | None) -> Reply:
    headers = {"Retry-After": str(retry_after if retry_after is not None else 1)}
    if provider == "okx":
        return json_reply({"msg": "Too Many Requests", "code": "50011"}, 429, headers)
    if provider == "coinglass":
        # Coinglass documents code "429" in the body; rate limiting comes with a real 429 status.
        return json_reply({"code": "429", "msg": "Too Many Requests"}, 429, headers)
    if provider == "coinapi":
        return json_reply(
            {
                "error": "Too many requests - You exceeded number of requests that could be processed concurrently "
                "for your plan, please reduce concurrency/threads or talk to us about the upgrade."
            },
            429,
            headers,
        )
    if provider == "lunarcrush":
        return json_reply({"error": "Too many requests, please slow down (rate limit exceeded)"}, 429, headers)
    return Reply(429, b"Too Many Requests", "text/plain", headers)


def server_error(provider: str, status: int | None) -> Reply:
    code = status or 500
    if provider == "okx":
        return json_reply({"code": "50001", "msg": OKX_ENVELOPES["50001"], "data": []}, code)
    if provider == "coinglass":
        return json_reply({"code": "500", "msg": "Internal server error"}, code)
    if provider in ("coinapi", "lunarcrush"):
        return json_reply({"error": "Internal server error"}, code)
    return Reply(code, b"Internal Server Error", "text/plain")


def html_page(provider: str, status: int | None) -> Reply:
    code = status or 502
    page = CLOUDFLARE_HTML.format(host=HOSTS[provider], status=code)
    return Reply(code, page.encode(), "text/html")


def error_envelope(provider: str, code: str | None) -> Reply:
    """HTTP 200 whose body is the provider's error form: clients must read the body, not the status."""
    if provider == "okx":
        okx_code = code or "50011"
        return json_reply({"code": okx_code, "msg": OKX_ENVELOPES.get(okx_code, "System error"), "data": []})
    if provider == "coinglass":
        cg_code = code or "500"
        return json_reply({"code": cg_code, "msg": COINGLASS_ENVELOPES.get(cg_code, "Internal server error")})
    if provider == "feargreed":
        return json_reply({"name": "Fear and Greed Index", "data": [], "metadata": {"error": "Internal error"}})
    return json_reply({"error": "Internal error, please try again later"})


# The request headers that carry a provider key (Coinglass, CoinAPI, LunarCrush's bearer token).
KEY_HEADERS = ("CG-API-KEY", "X-CoinAPI-Key", "Authorization")


def echo_key(provider: str, status: int | None, request_headers: Mapping[str, str]) -> Reply:
    """An answer that repeats the caller's key wherever a careless client might print it."""
    code = status or 401
    sent = " ".join(request_headers[name] for name in KEY_HEADERS if request_headers.get(name))
    message = f"API key {sent or '(none)'} is not valid for this request"
    headers = {"X-Echo-Api-Key": sent, "WWW-Authenticate": f'Bearer realm="{HOSTS[provider]}", error="{sent}"'}
    if 300 <= code < 400:
        headers["Location"] = f"https://{HOSTS[provider]}/login?api_key={sent.replace(' ', '+')}"
    if provider == "okx":
        payload: Any = {"code": "50113", "msg": message, "data": []}
    elif provider == "coinglass":
        payload = {"code": "400", "msg": message}
    elif provider == "feargreed":
        payload = {"name": "Fear and Greed Index", "data": [], "metadata": {"error": message}}
    else:
        payload = {"error": message}
    return json_reply(payload, code, headers)


def truncated(reply: Reply) -> Reply:
    return Reply(200, reply.body[: len(reply.body) // 2], JSON, dict(reply.headers))


def emptied(reply: Reply) -> Reply:
    """The same envelope with no data: an empty list/object where the data was."""
    try:
        payload = json.loads(reply.body)
    except ValueError:
        return Reply(200, b"{}", JSON)
    if isinstance(payload, dict) and "data" in payload:
        data = payload["data"]
        payload["data"] = {} if isinstance(data, dict) else []
        if payload.get("code") not in (None, "0", 0):
            payload["code"] = "0"  # an error answer emptied is still a success envelope
    else:
        payload = {}  # CoinAPI has no envelope: the empty answer is an empty object
    return json_reply(payload, 200, dict(reply.headers))
