"""Page tokens: opaque, bound to their request, signed with a random secret, short-lived, checked
field by field (a forged payload is a 400, never a 500), and usable for a listing without an end."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import secrets
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from records.db import Database
from service.rpc import page_tokens
from service.rpc.page_tokens import PageTokenError, PageTokens
from service.servicers.history import PAGE_TOKEN_SECRET_NAME
from service.settings import SettingsError, load_settings
from tests.stack import Stack
from tests.test_history_api import INTERVAL_MS, _archive, _row

REQUEST = {"s": "BTC", "a": 0, "b": 10, "n": 100}
SECRET = secrets.token_hex(32)


def forge(secret: str, payload: dict[str, Any]) -> str:
    """A token signed with ``secret`` holding exactly ``payload`` (iat included): what someone holding
    the key could write, to show the fields are checked even then."""
    key = hashlib.sha256(b"cryptosignals page token\0" + secret.encode()).digest()
    body = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(hmac.new(key, body, hashlib.sha256).digest()[:16] + body).decode().rstrip("=")


def test_a_token_round_trips_for_its_own_request() -> None:
    tokens = PageTokens(SECRET)
    token = tokens.encode({**REQUEST, "t": 5, "i": 7})
    assert tokens.decode(token, REQUEST)["i"] == 7
    assert "BTC" not in token  # opaque to the client (base64 of signed JSON, not a readable cursor)


def test_replicas_sharing_a_secret_accept_each_others_tokens_and_no_one_else_does() -> None:
    token = PageTokens(SECRET).encode({**REQUEST, "t": 5, "i": 7})
    assert PageTokens(SECRET).decode(token, REQUEST)["t"] == 5
    with pytest.raises(PageTokenError, match="altered or forged"):
        PageTokens(secrets.token_hex(32)).decode(token, REQUEST)
    with pytest.raises(ValueError, match="16 bytes"):
        PageTokens("short")


def test_an_expired_token_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    tokens = PageTokens(SECRET)
    token = tokens.encode({**REQUEST, "t": 5, "i": 7})
    later = time.time() + page_tokens.MAX_AGE_SECONDS + 1
    monkeypatch.setattr(time, "time", lambda: later)
    with pytest.raises(PageTokenError, match="expired"):
        tokens.decode(token, REQUEST)


def test_a_token_issued_in_the_future_is_refused() -> None:
    """The review's reproduction: iat in 2100 was accepted (and would never expire)."""
    year_2100 = int(datetime(2100, 1, 1, tzinfo=UTC).timestamp())
    with pytest.raises(PageTokenError, match="future"):
        PageTokens(SECRET).read(forge(SECRET, {**REQUEST, "t": 5, "i": 7, "iat": year_2100}))
    # A replica whose clock is a little ahead is fine.
    skewed = forge(SECRET, {**REQUEST, "t": 5, "i": 7, "iat": int(time.time()) + 30})
    assert PageTokens(SECRET).read(skewed)["i"] == 7


@pytest.mark.parametrize(
    "change",
    [
        {"t": 10**30},  # the review's: a huge t gave a 500 (integer overflow in the query)
        {"i": None},  # the review's: no i gave a 500 (KeyError)
        {"t": "5"},
        {"i": 7.5},
        {"i": True},
        {"n": -1},
        {"s": 1},
        {"t": 11},  # outside its own range
        {"i": 0},
        {"extra": 1},
        {"iat": "now"},
    ],
)
def test_payload_fields_are_type_checked(change: dict[str, Any]) -> None:
    payload: dict[str, Any] = {**REQUEST, "t": 5, "i": 7, "iat": int(time.time())}
    payload.update(change)
    payload = {k: v for k, v in payload.items() if v is not None}
    with pytest.raises(PageTokenError, match="not a token this service issued"):
        PageTokens(SECRET).read(forge(SECRET, payload))


@pytest.mark.parametrize("body", [b"[1, 2]", b"\xff\xfe", b"7", b"null"])
def test_a_signed_body_that_is_not_an_object_is_refused(body: bytes) -> None:
    key = hashlib.sha256(b"cryptosignals page token\0" + SECRET.encode()).digest()
    token = base64.urlsafe_b64encode(hmac.new(key, body, hashlib.sha256).digest()[:16] + body).decode()
    with pytest.raises(PageTokenError, match="not a token this service issued"):
        PageTokens(SECRET).read(token)


@pytest.mark.parametrize("garbage", ["", "%%%", "A" * 7, "not-a-token"])
def test_garbage_is_refused_with_a_sentence(garbage: str) -> None:
    with pytest.raises(PageTokenError, match="not a token this service issued"):
        PageTokens(SECRET).decode(garbage, REQUEST)


def test_a_configured_secret_must_be_long(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAGE_TOKEN_SECRET", "too-short")
    with pytest.raises(SettingsError, match="PAGE_TOKEN_SECRET") as refused:
        load_settings(_env_file=None)
    assert "too-short" not in str(refused.value)
    monkeypatch.setenv("PAGE_TOKEN_SECRET", SECRET)
    secret = load_settings(_env_file=None).page_token_secret
    assert secret is not None and secret.get_secret_value() == SECRET
    monkeypatch.setenv("PAGE_TOKEN_SECRET", "")
    assert load_settings(_env_file=None).page_token_secret is None


# --- Through the real stack (Envoy, server, its history database) ---------------------------------


async def test_the_secret_is_random_kept_in_the_database_and_shared(stack: Stack, tmp_path: Any) -> None:
    database = _archive(stack).database
    secret = await database.shared_secret(PAGE_TOKEN_SECRET_NAME)
    assert len(secret) == 64 and stack.settings.history_database_url not in secret
    # Another replica on the same database reads the same secret; another database makes its own.
    replica = Database(stack.settings.history_database_url)
    elsewhere = Database(f"sqlite+aiosqlite:///{tmp_path / 'other.db'}")
    try:
        assert await replica.shared_secret(PAGE_TOKEN_SECRET_NAME) == secret
        await elsewhere.migrate()
        assert await elsewhere.shared_secret(PAGE_TOKEN_SECRET_NAME) not in {secret, ""}
    finally:
        await replica.engine.dispose()
        await elsewhere.engine.dispose()


async def test_replicas_asking_at_once_share_one_secret(database: Database) -> None:
    """SQLite and a real PostgreSQL: four replicas asking together (no secret made yet) end up with one."""
    await database.migrate()  # a fresh schema (migration 0004 makes the table): no secret yet
    replicas = [database, *(Database(database.url) for _ in range(3))]
    try:
        found = await asyncio.gather(*(r.shared_secret(PAGE_TOKEN_SECRET_NAME) for r in replicas))
    finally:
        for replica in replicas[1:]:
            await replica.aclose()
    assert len(set(found)) == 1 and len(found[0]) == 64


async def _listing(rest: httpx.AsyncClient, symbol: str, params: dict[str, Any]) -> list[str]:
    seen: list[str] = []
    token = ""
    while True:
        reply = await rest.get(f"/signals/{symbol}/history", params={**params, "page_token": token})
        assert reply.status_code == 200, reply.text
        page = reply.json()
        seen.extend(e["time"] for e in page["entries"])
        token = page["nextPageToken"]
        if not token:
            return seen


async def test_a_listing_without_an_end_pages_to_its_last_page(rest: httpx.AsyncClient, stack: Stack) -> None:
    """The review's bug: the first page's end defaulted to "now" and the next page's to a later now,
    so the token belonged to "another request" (400)."""
    two_days_ago = (int(time.time() * 1000) - 2 * 86_400_000) // INTERVAL_MS * INTERVAL_MS
    rows = [_row("SOL", two_days_ago + i * INTERVAL_MS) for i in range(7)]
    await _archive(stack).database.insert(rows)
    seen = await _listing(rest, "SOL", {"page_size": 2})
    assert len(seen) == len(set(seen)) >= 7
    assert seen == sorted(seen, reverse=True)
    # With an explicit start and no end, the same.
    since = datetime.fromtimestamp((two_days_ago - 1000) / 1000, UTC).isoformat().replace("+00:00", "Z")
    assert len(await _listing(rest, "SOL", {"page_size": 3, "start": since})) >= 7


async def test_forged_payloads_are_a_400_never_a_500(rest: httpx.AsyncClient, stack: Stack) -> None:
    """Signed with the service's own secret, so only the field checks stand between them and the query."""
    secret = await _archive(stack).database.shared_secret(PAGE_TOKEN_SECRET_NAME)
    params: dict[str, Any] = {"start": "2025-01-01T00:00:00Z", "end": "2025-01-02T00:00:00Z", "page_size": 2}
    request: dict[str, Any] = {"s": "BTC", "a": 1_735_689_600_000, "b": 1_735_776_000_000, "n": 2}
    now = int(time.time())
    year_2100 = int(datetime(2100, 1, 1, tzinfo=UTC).timestamp())
    genuine = forge(secret, {**request, "t": request["a"] + 1, "i": 1, "iat": now})
    assert (await rest.get("/signals/BTC/history", params={**params, "page_token": genuine})).status_code == 200
    for payload in (
        {**request, "t": 10**30, "i": 1, "iat": now},
        {**request, "t": request["a"] + 1, "iat": now},
        {**request, "t": request["a"] + 1, "i": 1, "iat": year_2100},
        {**request, "t": request["a"] + 1, "i": "1", "iat": now},
    ):
        reply = await rest.get("/signals/BTC/history", params={**params, "page_token": forge(secret, payload)})
        assert reply.status_code == 400, (payload, reply.status_code, reply.text)
        assert "not a token this service issued" in reply.json()["message"]
