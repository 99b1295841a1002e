"""Opaque page tokens (AIP-158): what the next page continues from, signed so it cannot be forged.

A token carries the request it belongs to (symbol, resolved range and page size), the keyset
position and when it was issued, as base64url JSON with an HMAC. The key comes from a random secret:
PAGE_TOKEN_SECRET, or one generated once and kept in the history database (``Database.shared_secret``),
so replicas sharing the database accept each other's tokens; nothing about the database (its URL,
a password in it) goes into the key. A token from another request, altered, issued in the future,
older than a day, or whose fields are not what this service writes, is refused with a sentence
saying so (INVALID_ARGUMENT, a 400), never an internal error.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

MAX_AGE_SECONDS = 86_400
# Replicas' clocks may differ a little: a token "issued" up to this far ahead is still accepted.
MAX_CLOCK_SKEW_SECONDS = 60
# Signed 64-bit: what the database's columns and the protobuf fields hold.
_INT64 = (-(2**63), 2**63 - 1)
# Field -> its type in every token this service writes: s the symbol, a/b the resolved start and end
# (ms), n the page size, t/i the keyset position (computed_ms, row id), iat the issue time (s).
FIELDS: dict[str, type] = {"s": str, "a": int, "b": int, "n": int, "t": int, "i": int, "iat": int}
NOT_OURS = "page_token is not a token this service issued"


class PageTokenError(ValueError):
    pass


class PageTokens:
    def __init__(self, secret: str | bytes) -> None:
        raw = secret.encode() if isinstance(secret, str) else secret
        if len(raw) < 16:
            raise ValueError("a page token secret needs at least 16 bytes")
        self._key = hashlib.sha256(b"cryptosignals page token\0" + raw).digest()

    def encode(self, payload: dict[str, Any]) -> str:
        body = json.dumps({**payload, "iat": int(time.time())}, separators=(",", ":"), sort_keys=True).encode()
        mac = hmac.new(self._key, body, hashlib.sha256).digest()[:16]
        return base64.urlsafe_b64encode(mac + body).decode().rstrip("=")

    def read(self, token: str) -> dict[str, Any]:
        """The payload of a token this service issued, checked (signature, fields, age); else PageTokenError."""
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (ValueError, TypeError):
            raise PageTokenError(NOT_OURS) from None
        mac, body = raw[:16], raw[16:]
        if len(mac) < 16 or not hmac.compare_digest(mac, hmac.new(self._key, body, hashlib.sha256).digest()[:16]):
            raise PageTokenError(f"{NOT_OURS} (altered or forged)")
        try:
            payload = json.loads(body)
        except ValueError:
            raise PageTokenError(NOT_OURS) from None
        if not isinstance(payload, dict) or set(payload) != set(FIELDS):
            raise PageTokenError(NOT_OURS)
        for name, kind in FIELDS.items():
            value = payload[name]
            # bool is an int to Python, never to this service; ints stay within 64 bits.
            if isinstance(value, bool) or not isinstance(value, kind):
                raise PageTokenError(NOT_OURS)
            if isinstance(value, int) and not _INT64[0] <= value <= _INT64[1]:
                raise PageTokenError(NOT_OURS)
        age = time.time() - payload["iat"]
        if age < -MAX_CLOCK_SKEW_SECONDS:
            raise PageTokenError(f"{NOT_OURS} (issued in the future)")
        if age > MAX_AGE_SECONDS:
            raise PageTokenError("page_token has expired (tokens last a day): start again from the first page")
        if not payload["a"] <= payload["t"] <= payload["b"] or payload["i"] < 1 or payload["n"] < 1:
            raise PageTokenError(NOT_OURS)
        return payload

    def decode(self, token: str, expect: dict[str, Any]) -> dict[str, Any]:
        """``read``, then the token must belong to the request ``expect`` describes."""
        payload = self.read(token)
        if any(payload.get(k) != v for k, v in expect.items()):
            raise PageTokenError("page_token belongs to another request: keep symbol, start, end and page_size")
        return payload
