"""Cacheable at the edge and callable from browsers (issue 14), through the real Envoy: Cache-Control
and ETag on signal, market and Coinglass answers, 304 for a matching If-None-Match, CORS."""

from __future__ import annotations

import httpx
import pytest

from service.edge.envoy import render_config
from service.settings import SettingsError, load_settings
from tests.stack import running_stack
from twin import RecordedTwin

CACHEABLE = {
    "/signals/BTC": "public, max-age=1",
    "/market/BTC": "public, max-age=5",
    "/coinglass/markets": "public, max-age=30",
    "/coinglass/markets/BTC": "public, max-age=30",
    "/coinglass/liquidations/BTC/heatmap": "public, max-age=300",
    "/coinglass/funding-rate/BTC": "public, max-age=60",
    "/coinglass/supported-coins": "public, max-age=3600",
}


@pytest.mark.parametrize("path", sorted(CACHEABLE))
async def test_answers_carry_cache_control_and_an_etag_that_revalidates_to_304(
    rest: httpx.AsyncClient, path: str
) -> None:
    first = await rest.get(path)
    assert first.status_code == 200
    assert first.headers["cache-control"] == CACHEABLE[path]
    etag = first.headers["etag"]
    assert etag.startswith('"') and etag.endswith('"') and len(etag) > 8
    again = await rest.get(path, headers={"If-None-Match": etag})
    if again.headers.get("etag") == etag:  # the data did not change in between (a signal may be recomputed)
        assert again.status_code == 304 and again.content == b""
        assert again.headers["cache-control"] == CACHEABLE[path]
    else:
        assert again.status_code == 200 and again.json()
    # A list with the tag among others, and a weak comparison, match too.
    listed = await rest.get(path, headers={"If-None-Match": f'"other", W/{etag}'})
    assert listed.status_code in {200, 304}


@pytest.mark.parametrize("value", ["*", "garbage", '"nope"', "W/", ",,,", '"' * 40, "é"])
async def test_odd_if_none_match_values_get_a_normal_200(rest: httpx.AsyncClient, value: str) -> None:
    reply = await rest.get("/coinglass/markets/BTC", headers={b"If-None-Match": value.encode()})
    assert reply.status_code == 200 and reply.json()["symbol"] == "BTC"


async def test_errors_and_other_answers_are_not_cacheable(rest: httpx.AsyncClient) -> None:
    for path in ("/signals/NOT_A_COIN!", "/nope", "/coinglass/funding-rate/BTC?interval=h3"):
        reply = await rest.get(path)
        assert reply.status_code >= 400
        assert "etag" not in reply.headers and "cache-control" not in reply.headers
    health = await rest.get("/health")
    assert health.status_code == 200 and "etag" not in health.headers


async def test_a_preflight_is_answered_by_envoy_and_a_real_get_exposes_the_headers(rest: httpx.AsyncClient) -> None:
    origin = "https://app.example.com"
    preflight = await rest.options(
        "/signals/BTC",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization, if-none-match",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] in {origin, "*"}
    assert "GET" in preflight.headers["access-control-allow-methods"]
    assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
    real = await rest.get("/signals/BTC", headers={"Origin": origin})
    assert real.status_code == 200
    assert real.headers["access-control-allow-origin"] in {origin, "*"}
    exposed = {h.strip() for h in real.headers["access-control-expose-headers"].lower().split(",")}
    assert {"etag", "retry-after", "x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"} <= exposed


async def test_a_restricted_origin_list_and_private_answers_with_client_keys(twin: RecordedTwin) -> None:
    async with (
        running_stack(twin, cors_allowed_origins="https://ok.example", signal_api_keys="k1") as stack,
        httpx.AsyncClient(base_url=stack.rest_url, timeout=15.0) as client,
    ):
        auth = {"Authorization": "Bearer k1"}
        allowed = await client.get("/coinglass/markets/BTC", headers={**auth, "Origin": "https://ok.example"})
        assert allowed.headers["access-control-allow-origin"] == "https://ok.example"
        assert allowed.headers["cache-control"] == "private, max-age=30"
        other = await client.get("/coinglass/markets/BTC", headers={**auth, "Origin": "https://evil.example"})
        assert other.status_code == 200 and "access-control-allow-origin" not in other.headers
        preflight = await client.options(
            "/coinglass/markets/BTC",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
        )
        assert "access-control-allow-origin" not in preflight.headers


def test_origins_are_validated_and_rendered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORS_ALLOWED_ORIGINS", "https://a.example,not an origin")
    with pytest.raises(SettingsError, match="CORS_ALLOWED_ORIGINS"):
        load_settings(_env_file=None)
    config = render_config(
        port=1, grpc_port=2, admin_port=3, cors_allowed_origins=["https://a.example"], cache_rules=[]
    )
    assert "{exact: 'https://a.example'}" in config
    assert "safe_regex: {regex: '.*'}" in render_config(
        port=1, grpc_port=2, admin_port=3, cors_allowed_origins=["*"], cache_rules=[]
    )
