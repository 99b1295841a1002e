"""The REST API through the real Envoy, real grpc.aio server and the recorded twin."""

from __future__ import annotations

import httpx
import pytest
from openapi_spec_validator import validate

from tests.stack import FAKE_KEYS, Stack, running_stack
from twin import RecordedTwin

pytestmark = pytest.mark.asyncio


async def test_root_lists_every_endpoint(rest: httpx.AsyncClient) -> None:
    reply = await rest.get("/")
    assert reply.status_code == 200
    body = reply.json()
    paths = {e["path"] for e in body["endpoints"]}
    assert {"/signals/{symbol}", "/coinglass/dashboard/{symbol}", "/health"} <= paths


async def test_health_reports_every_provider(rest: httpx.AsyncClient) -> None:
    reply = await rest.get("/health")
    assert reply.status_code == 200
    body = reply.json()
    assert body["status"] == "SERVING"
    providers = {p["provider"]: p for p in body["providers"]}
    assert set(providers) == {"coinglass", "okx", "coinapi", "lunarcrush", "feargreed"}
    assert all(p["configured"] for p in providers.values())


async def test_signal_is_computed_from_recorded_market_data(rest: httpx.AsyncClient) -> None:
    """The exact answer the recorded data gives (the README's example): every number is checked, so
    an answer that only echoed the symbol, or scored other data, fails."""
    reply = await rest.get("/signals/BTC")
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["symbol"] == "BTC"
    assert (body["signal"], body["score"], body["confidence"]) == ("NEUTRAL", 38.82, "medium")
    assert [(f["factor"], f["contribution"]) for f in body["topFactors"]] == [
        ("liquidations", -7.3),
        ("long_short_ratio", -6.78),
        ("social", 3.06),
    ]
    assert body["reason"] == " | ".join(f["explanation"] for f in body["topFactors"])
    assert body["topFactors"][1]["explanation"] == "Overcrowded longs (72.4% of accounts) - contrarian bearish"
    # Seed-compatible headline fields, from the recorded data.
    assert body["price"] == 79776.6
    assert body["fundingRate"] == 0.0001799
    assert body["openInterest"] == pytest.approx(54557737074.0143)
    assert body["socialScore"] == 64
    assert (body["coverage"], body["missingFactors"]) == (1, [])
    assert body["timestamp"].endswith("Z")
    # debug is off: no factor dump
    assert body["factors"] == []


async def test_signal_direction_follows_the_documented_thresholds(rest: httpx.AsyncClient) -> None:
    body = (await rest.get("/signals/ETH")).json()
    expected = "LONG" if body["score"] >= 65 else "SHORT" if body["score"] <= 35 else "NEUTRAL"
    assert body["signal"] == expected


async def test_debug_signal_shows_all_eight_factors_with_their_numbers(rest: httpx.AsyncClient) -> None:
    reply = await rest.get("/signals/BTC", params={"debug": "true"})
    assert reply.status_code == 200
    body = reply.json()
    factors = {f["factor"]: f for f in body["factors"]}
    assert set(factors) == {
        "liquidations",
        "funding_rate",
        "momentum",
        "long_short_ratio",
        "smart_money",
        "open_interest",
        "social",
        "fear_greed",
    }
    for factor in factors.values():
        assert factor["source"], factor
        assert factor["metrics"], factor
        assert 0 <= factor["subScore"] <= 100
    assert body["coverage"] == pytest.approx(1.0)
    assert body["config"]["longThreshold"] == 65
    assert body["config"]["scales"]["funding_pct"] > 0
    assert set(body["config"]["momentumWeights"]) == {"1h", "4h", "24h"}
    assert body["config"]["confidenceRules"]["coverage_floor"] == 0.7
    # Every top factor's sentence quotes the metrics shown for it.
    for top in body["topFactors"]:
        metrics = factors[top["factor"]]["metrics"]
        assert any(f"{abs(v):.1f}" in top["explanation"] for v in metrics.values()), top
    assert round(sum(f["contribution"] for f in factors.values()) + 50, 1) == pytest.approx(body["score"], abs=0.1)


async def test_symbol_spellings_are_normalised(rest: httpx.AsyncClient) -> None:
    for spelling in ("btc", "BTCUSDT", "BTC-USDT-SWAP"):
        body = (await rest.get(f"/signals/{spelling}")).json()
        assert body["symbol"] == "BTC", spelling


async def test_bad_symbol_is_400_with_a_clear_json_message(rest: httpx.AsyncClient) -> None:
    reply = await rest.get("/signals/NOT_A_COIN!")
    assert reply.status_code == 400
    body = reply.json()
    assert body["code"] == 3
    assert "symbol" in body["message"] and "not valid" in body["message"]


async def test_unknown_coin_is_404(rest: httpx.AsyncClient, stack: Stack) -> None:
    await stack.server.app.desk.universe.settled()  # the coin list is loaded: refused before any upstream call
    stack.twin.clear_requests()
    reply = await rest.get("/signals/NOPECOIN")
    assert reply.status_code == 404, reply.text
    body = reply.json()
    assert (body["code"], body["message"]) == (5, "unknown coin NOPECOIN: no provider has data for it")
    assert stack.twin.request_count() == 0


async def test_unknown_path_is_404_json(rest: httpx.AsyncClient) -> None:
    reply = await rest.get("/no/such/thing")
    assert reply.status_code == 404
    assert reply.headers["content-type"].startswith("application/json")
    assert "no such endpoint" in reply.json()["message"]


async def test_bad_boolean_parameter_is_400_json(rest: httpx.AsyncClient) -> None:
    reply = await rest.get("/signals/BTC", params={"debug": "maybe"})
    assert reply.status_code == 400
    assert reply.headers["content-type"].startswith("application/json")
    assert reply.json()["message"]


async def test_action_schema_is_served_and_valid(rest: httpx.AsyncClient) -> None:
    for path in ("/gpt/action-schema", "/openapi.json"):
        reply = await rest.get(path)
        assert reply.status_code == 200
        assert reply.headers["content-type"].startswith("application/json")
        validate(reply.json())


async def test_docs_pages_load_the_schema(rest: httpx.AsyncClient) -> None:
    for path in ("/docs", "/redoc"):
        reply = await rest.get(path)
        assert reply.status_code == 200
        assert reply.headers["content-type"].startswith("text/html")
        assert "/openapi.json" in reply.text


async def test_market_snapshot_reports_each_provider(rest: httpx.AsyncClient) -> None:
    reply = await rest.get("/market/BTC")
    assert reply.status_code == 200, reply.text
    body = reply.json()
    statuses = {s["provider"]: s["status"] for s in body["sources"]}
    assert statuses == dict.fromkeys(("coinglass", "okx", "coinapi", "lunarcrush", "feargreed"), "ok")
    assert body["okx"]["lastPrice"] > 0
    assert body["okx"]["candles"]
    assert body["coinapi"]["priceUsd"] > 0
    assert body["fearGreed"]["value"] > 0


async def test_premium_probe_reports_status_and_latency_without_the_key(rest: httpx.AsyncClient) -> None:
    reply = await rest.get("/debug/premium/BTC")
    assert reply.status_code == 200
    text = reply.text
    body = reply.json()
    assert body["configured"] is True
    assert body["endpoints"]
    for probe in body["endpoints"]:
        assert probe["endpoint"].startswith("/api/")
        assert probe["latencyMs"] >= 0
    for key in FAKE_KEYS.values():
        assert key not in text


async def test_premium_probe_asked_again_costs_no_upstream_call(rest: httpx.AsyncClient, twin: RecordedTwin) -> None:
    """The probe is cached like any call: repeating it cannot spend the paid budget."""
    assert (await rest.get("/debug/premium/ETH")).status_code == 200
    twin.clear_requests()
    again = await rest.get("/debug/premium/ETH")
    assert again.status_code == 200 and again.json()["endpoints"]
    assert twin.request_count("coinglass") == 0


async def test_with_client_keys_the_premium_probe_is_for_operator_keys_only(twin: RecordedTwin) -> None:
    async with (
        running_stack(twin, signal_api_keys="user-key,ops-key", operator_keys="ops-key") as stack,
        httpx.AsyncClient(base_url=stack.rest_url) as client,
    ):
        user = await client.get("/debug/premium/BTC", headers={"Authorization": "Bearer user-key"})
        ops = await client.get("/debug/premium/BTC", headers={"Authorization": "Bearer ops-key"})
        signal = await client.get("/signals/BTC", headers={"Authorization": "Bearer user-key"})
    assert user.status_code == 403 and "OPERATOR_KEYS" in user.json()["message"]
    assert ops.status_code == 200 and ops.json()["endpoints"]
    assert signal.status_code == 200  # every other call is the user key's as before


async def test_coinglass_without_key_is_400_naming_the_variable(twin: RecordedTwin) -> None:
    async with running_stack(twin, keys=False) as stack, httpx.AsyncClient(base_url=stack.rest_url) as client:
        reply = await client.get("/coinglass/markets/BTC")
        signal = await client.get("/signals/BTC")
    assert reply.status_code == 400
    assert reply.json()["message"] == "COINGLASS_API_KEY is not set"
    assert signal.status_code == 200  # the signal falls back to keyless sources


async def test_endpoint_outside_the_plan_is_403_naming_it(twin: RecordedTwin) -> None:
    twin.set_plan("hobbyist")
    try:
        async with running_stack(twin) as stack, httpx.AsyncClient(base_url=stack.rest_url) as client:
            reply = await client.get("/coinglass/markets")
    finally:
        twin.set_plan("professional")
    assert reply.status_code == 403
    assert "/api/futures/coins-markets" in reply.json()["message"]


COINGLASS_PATHS = [
    "/coinglass/markets",
    "/coinglass/markets/BTC",
    "/coinglass/perpetual-market/BTC",
    "/coinglass/liquidations/BTC?include_orders=true&include_map=true",
    "/coinglass/liquidations/BTC/heatmap",
    "/coinglass/long-short-ratio/BTC?interval=h4",
    "/coinglass/funding-rate/BTC?interval=h8",
    "/coinglass/open-interest/BTC?interval=d1",
    "/coinglass/supported-coins",
    "/coinglass/exchanges",
    "/coinglass/dashboard/BTC",
]


@pytest.mark.parametrize("path", COINGLASS_PATHS)
async def test_every_coinglass_path_returns_typed_non_empty_data(rest: httpx.AsyncClient, path: str) -> None:
    reply = await rest.get(path)
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body and any(v not in (None, "", [], {}, 0) for v in body.values())
    if path.startswith("/coinglass/dashboard"):
        assert body["failures"] == []


async def test_metrics_are_served_in_prometheus_format_without_keys(rest: httpx.AsyncClient) -> None:
    await rest.get("/signals/BTC")
    reply = await rest.get("/metrics")
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/plain")
    text = reply.text
    assert 'cryptosignals_rpc_requests_total{code="OK",method="/cryptosignals.v1.SignalService/GetSignal"}' in text
    assert (
        'cryptosignals_rpc_latency_seconds_count{code="OK",method="/cryptosignals.v1.SignalService/GetSignal"}' in text
    )
    assert 'cryptosignals_upstream_requests_total{endpoint="/api/v5/market/candles"' in text
    assert "cryptosignals_cache_events_total" in text
    assert 'endpoint="/public/coins/{coin}/v1"' in text  # symbols never become labels
    for key in FAKE_KEYS.values():
        assert key not in text
