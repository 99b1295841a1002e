"""Opaque page tokens (AIP-158): what the next page continues from, signed so it cannot be forged.

A token carries the request it belongs to (symbol and range), the keyset position and when it was
issued, as base64url JSON with an HMAC. Replicas sharing a database derive the same key from it,
so a token from one replica works on another. A token from another request, altered, or older than
a day is refused with a sentence saying so.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

MAX_AGE_SECONDS = 86_400


class PageTokenError(ValueError):
    pass


class PageTokens:
    def __init__(self, secret: str) -> None:
        self._key = hashlib.sha256(b"cryptosignals page token\0" + secret.encode()).digest()

    def encode(self, payload: dict[str, Any]) -> str:
        body = json.dumps({**payload, "iat": int(time.time())}, separators=(",", ":"), sort_keys=True).encode()
        mac = hmac.new(self._key, body, hashlib.sha256).digest()[:16]
        return base64.urlsafe_b64encode(mac + body).decode().rstrip("=")

    def decode(self, token: str, expect: dict[str, Any]) -> dict[str, Any]:
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (ValueError, TypeError):
            raise PageTokenError("page_token is not a token this service issued") from None
        mac, body = raw[:16], raw[16:]
        if len(mac) < 16 or not hmac.compare_digest(mac, hmac.new(self._key, body, hashlib.sha256).digest()[:16]):
            raise PageTokenError("page_token is not a token this service issued (altered or forged)")
        payload: dict[str, Any] = json.loads(body)
        if time.time() - payload.get("iat", 0) > MAX_AGE_SECONDS:
            raise PageTokenError("page_token has expired (tokens last a day): start again from the first page")
        if any(payload.get(k) != v for k, v in expect.items()):
            raise PageTokenError("page_token belongs to another request: keep symbol, start, end and page_size")
        return payload
