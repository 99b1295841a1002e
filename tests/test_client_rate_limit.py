"""Client rate limit: a token bucket per client (enforced by the server), 429 JSON when empty, /health exempt."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx
import pytest

from service.edge.envoy import render_config
from service.settings import SettingsError, load_settings
from tests.stack import running_stack
from twin import RecordedTwin


async def test_a_burst_over_the_bucket_gets_json_429s_and_health_is_never_throttled(twin: RecordedTwin) -> None:
    async with (
        running_stack(twin, client_rate_limit_per_second=1, client_rate_limit_burst=3) as stack,
        httpx.AsyncClient(base_url=stack.rest_url, timeout=10) as client,
    ):
        replies = await asyncio.gather(*(client.get("/coinglass/markets/BTC") for _ in range(20)))
        # The bucket is empty now: health checks still pass, however many.
        health = await asyncio.gather(*(client.get("/health") for _ in range(30)))
        # Tokens come back after the fill interval (1 s).
        await asyncio.sleep(1.1)
        later = await client.get("/coinglass/markets/BTC")
    statuses = Counter(r.status_code for r in replies)
    assert set(statuses) == {200, 429}, statuses
    assert 1 <= statuses[200] <= 4, statuses  # the burst of 3, plus at most one refill
    for reply in replies:
        if reply.status_code == 429:
            assert reply.headers["content-type"].startswith("application/json")
            body = reply.json()
            assert body["code"] == 8 and "too many requests" in body["message"]
            assert reply.headers["retry-after"] == "1"
            assert reply.headers["x-ratelimit-limit"] == "3"
            assert reply.headers["x-ratelimit-remaining"] == "0"
        else:
            assert reply.json()["symbol"] == "BTC"
            assert "retry-after" not in reply.headers
    assert {r.status_code for r in health} == {200}
    assert all("x-ratelimit-limit" not in r.headers for r in health)
    assert later.status_code == 200


async def test_the_limit_is_off_when_the_rate_is_zero(rest: httpx.AsyncClient) -> None:
    # The session stack runs with CLIENT_RATE_LIMIT_PER_SECOND=0.
    replies = await asyncio.gather(*(rest.get("/") for _ in range(50)))
    assert {r.status_code for r in replies} == {200}
    assert all("x-ratelimit-limit" not in r.headers for r in replies)


def test_envoy_no_longer_holds_one_bucket_for_everyone() -> None:
    # The limit is per client, in the server (tests/test_client_fairness.py): Envoy has no shared bucket.
    config = render_config(
        port=1, grpc_port=2, admin_port=3, client_rate_limit_per_second=200, client_rate_limit_burst=400
    )
    assert "local_ratelimit" not in config and "token_bucket" not in config
    assert "use_remote_address: true" in config


def test_defaults_and_a_burst_below_the_rate_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CLIENT_RATE_LIMIT_PER_SECOND", "CLIENT_RATE_LIMIT_BURST"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings(_env_file=None)
    assert (settings.client_rate_limit_per_second, settings.client_rate_limit_burst) == (200, 400)
    monkeypatch.setenv("CLIENT_RATE_LIMIT_PER_SECOND", "100")
    monkeypatch.setenv("CLIENT_RATE_LIMIT_BURST", "10")
    with pytest.raises(SettingsError, match="CLIENT_RATE_LIMIT_BURST"):
        load_settings(_env_file=None)
    monkeypatch.setenv("CLIENT_RATE_LIMIT_PER_SECOND", "-1")
    with pytest.raises(SettingsError, match="CLIENT_RATE_LIMIT_PER_SECOND"):
        load_settings(_env_file=None)
