"""Page tokens: opaque, bound to their request, signed, and short-lived."""

from __future__ import annotations

import time

import pytest

from service.rpc import page_tokens
from service.rpc.page_tokens import PageTokenError, PageTokens

REQUEST = {"s": "BTC", "a": 0, "b": 10, "n": 100}


def test_a_token_round_trips_for_its_own_request() -> None:
    tokens = PageTokens("db-url")
    token = tokens.encode({**REQUEST, "t": 5, "i": 7})
    assert tokens.decode(token, REQUEST)["i"] == 7
    assert "BTC" not in token  # opaque to the client (base64 of signed JSON, not a readable cursor)


def test_replicas_sharing_a_database_accept_each_others_tokens_and_no_one_else_does() -> None:
    token = PageTokens("db-url").encode({**REQUEST, "t": 5, "i": 7})
    assert PageTokens("db-url").decode(token, REQUEST)["t"] == 5
    with pytest.raises(PageTokenError, match="altered or forged"):
        PageTokens("another-db").decode(token, REQUEST)


def test_an_expired_token_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    tokens = PageTokens("db-url")
    token = tokens.encode({**REQUEST, "t": 5, "i": 7})
    later = time.time() + page_tokens.MAX_AGE_SECONDS + 1
    monkeypatch.setattr(time, "time", lambda: later)
    with pytest.raises(PageTokenError, match="expired"):
        tokens.decode(token, REQUEST)


@pytest.mark.parametrize("garbage", ["", "%%%", "A" * 7, "not-a-token"])
def test_garbage_is_refused_with_a_sentence(garbage: str) -> None:
    with pytest.raises(PageTokenError, match="not a token this service issued"):
        PageTokens("db-url").decode(garbage, REQUEST)
