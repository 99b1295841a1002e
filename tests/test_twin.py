"""The recorded twin, through a real HTTP client on loopback: shapes, auth, plans, faults, recording."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest

from twin import FAULT_KINDS, FaultKind, RecordedTwin

CG_KEY = {"CG-API-KEY": "test-key"}
BTC_SWAP = {"instId": "BTC-USDT-SWAP"}


@pytest.fixture(scope="module")
async def twin() -> AsyncIterator[RecordedTwin]:
    recorded = RecordedTwin()
    await recorded.start()
    yield recorded
    await recorded.stop()


@pytest.fixture
async def client(twin: RecordedTwin) -> AsyncIterator[httpx.AsyncClient]:
    twin.clear_faults()
    twin.clear_requests()
    twin.set_plan("professional")
    twin.set_latency(0)
    async with httpx.AsyncClient(base_url=twin.url, timeout=5.0) as http:
        yield http
    twin.clear_faults()


async def test_base_urls_name_every_provider_under_one_port(twin: RecordedTwin) -> None:
    urls = twin.base_urls()
    assert urls["OKX_BASE_URL"] == f"{twin.url}/okx"
    assert set(urls) == {
        "COINGLASS_BASE_URL",
        "OKX_BASE_URL",
        "COINAPI_BASE_URL",
        "LUNARCRUSH_BASE_URL",
        "FEAR_GREED_BASE_URL",
    }


async def test_okx_candles_are_newest_first_strings_and_honour_limit(client: httpx.AsyncClient) -> None:
    r = await client.get("/okx/api/v5/market/candles", params={**BTC_SWAP, "bar": "1H", "limit": 100})
    body = r.json()
    assert r.status_code == 200 and body["code"] == "0"
    rows = body["data"]
    assert len(rows) == 100 and len(rows[0]) == 9
    assert all(isinstance(v, str) for v in rows[0])
    assert int(rows[0][0]) - int(rows[1][0]) == 3_600_000
    assert rows[0][8] == "0" and rows[1][8] == "1"  # only the newest candle is still open
    assert 70_000 < float(rows[0][4]) < 90_000


async def test_okx_coarser_bars_are_resampled_from_hourly(client: httpx.AsyncClient) -> None:
    r = await client.get("/okx/api/v5/market/candles", params={**BTC_SWAP, "bar": "1Dutc", "limit": 10})
    rows = r.json()["data"]
    assert len(rows) == 10
    assert int(rows[0][0]) % 86_400_000 == 0
    assert int(rows[0][0]) - int(rows[1][0]) == 86_400_000


async def test_okx_unknown_instrument_is_51001_with_http_200(client: httpx.AsyncClient) -> None:
    r = await client.get("/okx/api/v5/market/ticker", params={"instId": "DOGE-USDT-SWAP"})
    assert r.status_code == 200 and r.json()["code"] == "51001"


async def test_okx_missing_parameter_is_50014_with_http_400(client: httpx.AsyncClient) -> None:
    r = await client.get("/okx/api/v5/public/open-interest", params={"instId": "BTC-USDT-SWAP"})
    assert r.status_code == 400
    assert r.json() == {"code": "50014", "data": [], "msg": "instType cannot be empty"}


async def test_okx_unknown_path_has_numeric_404_code(client: httpx.AsyncClient) -> None:
    r = await client.get("/okx/api/v5/no/such/thing")
    assert r.status_code == 404 and r.json()["code"] == 404


@pytest.mark.parametrize(
    ("path", "params", "width"),
    [
        ("/api/v5/rubik/stat/contracts/open-interest-history", {**BTC_SWAP, "period": "1H"}, 4),
        ("/api/v5/rubik/stat/contracts/long-short-account-ratio-contract", {**BTC_SWAP, "period": "1H"}, 2),
        ("/api/v5/rubik/stat/contracts/long-short-account-ratio-contract-top-trader", {**BTC_SWAP, "period": "1H"}, 2),
        ("/api/v5/rubik/stat/contracts/long-short-position-ratio-contract-top-trader", {**BTC_SWAP, "period": "1H"}, 2),
        ("/api/v5/rubik/stat/taker-volume-contract", {**BTC_SWAP, "period": "1H"}, 3),
    ],
)
async def test_okx_rubik_series_are_string_rows(
    client: httpx.AsyncClient, path: str, params: dict[str, str], width: int
) -> None:
    rows = (await client.get(f"/okx{path}", params={**params, "limit": "48"})).json()["data"]
    assert len(rows) == 48 and all(len(row) == width for row in rows)
    assert int(rows[0][0]) > int(rows[-1][0])


async def test_okx_funding_oi_ticker_and_liquidations_have_recorded_shapes(client: httpx.AsyncClient) -> None:
    funding = (await client.get("/okx/api/v5/public/funding-rate", params=BTC_SWAP)).json()["data"][0]
    assert {"fundingRate", "fundingTime", "nextFundingTime", "premium"} <= set(funding)
    history = (await client.get("/okx/api/v5/public/funding-rate-history", params={**BTC_SWAP, "limit": 30})).json()
    assert len(history["data"]) == 30 and "realizedRate" in history["data"][0]
    oi = (await client.get("/okx/api/v5/public/open-interest", params={"instType": "SWAP", **BTC_SWAP})).json()
    assert set(oi["data"][0]) == {"instType", "instId", "oi", "oiCcy", "oiUsd", "ts"}
    ticker = (await client.get("/okx/api/v5/market/ticker", params=BTC_SWAP)).json()["data"][0]
    liq = await client.get("/okx/api/v5/public/liquidation-orders", params={"instType": "SWAP", "uly": "BTC-USDT"})
    details = liq.json()["data"][0]["details"]
    longs = sum(1 for d in details if d["posSide"] == "long")
    assert longs > len(details) - longs  # BTC is recorded long-crowded: longs liquidated more
    assert ticker["last"] == "79776.6"


async def test_coinglass_requires_a_key_and_rejects_a_bad_one(client: httpx.AsyncClient) -> None:
    path = "/coinglass/api/futures/supported-coins"
    missing = await client.get(path)
    assert missing.status_code == 200 and missing.json() == {"code": "401", "msg": "API key missing."}
    bad = await client.get(path, headers={"CG-API-KEY": "invalid"})
    assert bad.json() == {"code": "400", "msg": "Invalid API key provided"}
    good = await client.get(path, headers=CG_KEY)
    assert good.json()["data"] == ["BTC", "ETH", "SOL"]
    assert good.headers["API-KEY-MAX-LIMIT"] == "1200"


async def test_coinglass_plan_without_the_endpoint_answers_upgrade_plan(
    twin: RecordedTwin, client: httpx.AsyncClient
) -> None:
    twin.set_plan("startup")
    r = await client.get("/coinglass/api/futures/coins-markets", headers=CG_KEY)
    assert r.status_code == 200 and r.json() == {"code": "401", "msg": "Upgrade plan"}
    sub = await client.get("/coinglass/api/user/account/subscription", headers=CG_KEY)
    assert sub.json()["data"]["level"] == "STARTUP"
    twin.set_plan("professional")
    r = await client.get("/coinglass/api/futures/coins-markets", headers=CG_KEY)
    assert [row["symbol"] for row in r.json()["data"]] == ["BTC", "ETH", "SOL"]


async def test_coinglass_hobbyist_gets_no_interval_under_4h(twin: RecordedTwin, client: httpx.AsyncClient) -> None:
    twin.set_plan("hobbyist")
    params: dict[str, str] = {"symbol": "BTC", "interval": "1h"}
    r = await client.get("/coinglass/api/futures/open-interest/aggregated-history", params=params, headers=CG_KEY)
    assert r.json()["msg"] == "Upgrade plan"
    r = await client.get(
        "/coinglass/api/futures/open-interest/aggregated-history", params={**params, "interval": "4h"}, headers=CG_KEY
    )
    assert r.json()["code"] == "0"


async def test_coinglass_history_is_oldest_first_with_string_ohlc(client: httpx.AsyncClient) -> None:
    r = await client.get(
        "/coinglass/api/futures/open-interest/aggregated-history",
        params={"symbol": "BTC", "interval": "1h", "limit": 48},
        headers=CG_KEY,
    )
    rows = r.json()["data"]
    assert len(rows) == 48 and rows[0]["time"] < rows[-1]["time"]
    assert all(isinstance(rows[0][k], str) for k in ("open", "high", "low", "close"))


async def test_coinglass_btc_liquidations_lean_long(client: httpx.AsyncClient) -> None:
    params: dict[str, str | int] = {"exchange_list": "Binance,OKX", "symbol": "BTC", "interval": "1h", "limit": 24}
    rows = (
        await client.get("/coinglass/api/futures/liquidation/aggregated-history", params=params, headers=CG_KEY)
    ).json()["data"]
    assert len(rows) == 24
    longs = sum(r["aggregated_long_liquidation_usd"] for r in rows)
    shorts = sum(r["aggregated_short_liquidation_usd"] for r in rows)
    assert longs > 1.5 * shorts


async def test_coinglass_pair_ratio_takes_pair_spelling(client: httpx.AsyncClient) -> None:
    params: dict[str, str | int] = {"exchange": "Binance", "symbol": "BTCUSDT", "interval": "4h", "limit": 5}
    for name in ("global-long-short-account-ratio", "top-long-short-account-ratio", "top-long-short-position-ratio"):
        rows = (await client.get(f"/coinglass/api/futures/{name}/history", params=params, headers=CG_KEY)).json()[
            "data"
        ]
        assert len(rows) == 5 and rows[1]["time"] - rows[0]["time"] == 4 * 3_600_000


async def test_coinglass_unknown_coin_is_an_empty_success(client: httpx.AsyncClient) -> None:
    r = await client.get("/coinglass/api/futures/pairs-markets", params={"symbol": "DOGE"}, headers=CG_KEY)
    assert r.json() == {"code": "0", "msg": "success", "data": []}


async def test_coinapi_rate_and_errors(client: httpx.AsyncClient) -> None:
    ok = await client.get("/coinapi/v1/exchangerate/BTC/USD", headers={"X-CoinAPI-Key": "k"})
    assert ok.json()["asset_id_base"] == "BTC" and isinstance(ok.json()["rate"], float)
    assert (await client.get("/coinapi/v1/exchangerate/BTC/USD")).status_code == 401
    missing = await client.get("/coinapi/v1/exchangerate/XYZ/USD", headers={"X-CoinAPI-Key": "k"})
    assert missing.status_code == 550 and "error" in missing.json()


async def test_lunarcrush_needs_bearer_and_knows_coins_and_topics(client: httpx.AsyncClient) -> None:
    auth = {"Authorization": "Bearer k"}
    unauthorised = await client.get("/lunarcrush/public/coins/BTC/v1")
    assert unauthorised.status_code == 401 and unauthorised.json() == {"error": "Unauthorized: invalid API key"}
    coin = (await client.get("/lunarcrush/public/coins/ETH/v1", headers=auth)).json()
    assert coin["data"]["symbol"] == "ETH" and 0 <= coin["data"]["galaxy_score"] <= 100
    topic = (await client.get("/lunarcrush/public/topic/bitcoin/v1", headers=auth)).json()
    assert "types_sentiment" in topic["data"]
    assert (await client.get("/lunarcrush/public/coins/NOPE/v1", headers=auth)).status_code == 404


async def test_fear_greed_is_newest_first_with_string_values(client: httpx.AsyncClient) -> None:
    rows = (await client.get("/feargreed/fng/", params={"limit": 10})).json()["data"]
    assert len(rows) == 10 and rows[0]["value"] == "24"
    assert int(rows[0]["timestamp"]) > int(rows[1]["timestamp"])


async def test_rate_limit_fault_uses_429_retry_after_and_provider_body(
    twin: RecordedTwin, client: httpx.AsyncClient
) -> None:
    twin.set_fault("okx", "/api/v5/market/ticker", FaultKind.RATE_LIMIT, retry_after=7)
    r = await client.get("/okx/api/v5/market/ticker", params=BTC_SWAP)
    assert r.status_code == 429 and r.headers["Retry-After"] == "7"
    assert r.json() == {"msg": "Too Many Requests", "code": "50011"}
    twin.set_fault("coinglass", "*", "rate_limit")
    r = await client.get("/coinglass/api/futures/supported-coins", headers=CG_KEY)
    assert r.status_code == 429 and r.json()["code"] == "429"


async def test_fault_with_times_heals_after_n_requests(twin: RecordedTwin, client: httpx.AsyncClient) -> None:
    twin.set_fault("feargreed", "/fng/", "server_error", status=503, times=2)
    statuses = [(await client.get("/feargreed/fng/")).status_code for _ in range(3)]
    assert statuses == [503, 503, 200]


async def test_exact_endpoint_fault_wins_over_wildcard(twin: RecordedTwin, client: httpx.AsyncClient) -> None:
    twin.set_fault("okx", "*", "server_error")
    twin.set_fault("okx", "/api/v5/market/ticker", "empty")
    ticker = await client.get("/okx/api/v5/market/ticker", params=BTC_SWAP)
    assert ticker.json() == {"code": "0", "msg": "", "data": []}
    assert (await client.get("/okx/api/v5/public/funding-rate", params=BTC_SWAP)).status_code == 500


async def test_html_truncated_and_envelope_faults(twin: RecordedTwin, client: httpx.AsyncClient) -> None:
    twin.set_fault("coinapi", "*", "html", times=1)
    r = await client.get("/coinapi/v1/exchangerate/BTC/USD", headers={"X-CoinAPI-Key": "k"})
    assert r.status_code == 502 and r.headers["content-type"].startswith("text/html") and "cloudflare" in r.text.lower()
    twin.set_fault("okx", "*", "truncated_json", times=1)
    r = await client.get("/okx/api/v5/market/candles", params=BTC_SWAP)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    with pytest.raises(json.JSONDecodeError):
        json.loads(r.text)
    twin.set_fault("okx", "*", "error_envelope", code="52000", times=1)
    r = await client.get("/okx/api/v5/market/candles", params=BTC_SWAP)
    assert r.status_code == 200 and r.json()["code"] == "52000"
    twin.set_fault("coinglass", "*", "error_envelope", times=1)
    r = await client.get("/coinglass/api/futures/supported-coins", headers=CG_KEY)
    assert r.status_code == 200 and r.json()["code"] == "500"


async def test_latency_fault_delays_then_answers(twin: RecordedTwin, client: httpx.AsyncClient) -> None:
    twin.set_fault("feargreed", "*", "latency", latency_ms=150, times=1)
    r = await client.get("/feargreed/fng/")
    assert r.status_code == 200 and r.elapsed.total_seconds() >= 0.14


async def test_timeout_fault_outlasts_the_client_timeout(twin: RecordedTwin, client: httpx.AsyncClient) -> None:
    twin.set_fault("okx", "*", "timeout", times=1)
    with pytest.raises(httpx.ReadTimeout):
        await client.get("/okx/api/v5/market/ticker", params=BTC_SWAP, timeout=0.3)
    assert (await client.get("/okx/api/v5/market/ticker", params=BTC_SWAP)).status_code == 200


async def test_unknown_fault_kind_or_provider_is_rejected(twin: RecordedTwin) -> None:
    assert {k.value for k in FaultKind} == FAULT_KINDS
    with pytest.raises(ValueError, match="fault kind"):
        twin.set_fault("okx", "*", "gremlins")
    with pytest.raises(ValueError, match="provider"):
        twin.set_fault("binance", "*", "empty")


async def test_requests_are_recorded_without_the_provider_prefix(twin: RecordedTwin, client: httpx.AsyncClient) -> None:
    await client.get("/okx/api/v5/market/ticker", params=BTC_SWAP)
    await client.get("/okx/api/v5/market/ticker", params=BTC_SWAP)
    await client.get("/coinglass/api/futures/supported-coins", headers=CG_KEY)
    assert twin.request_count() == 3
    assert twin.request_count("okx", "/api/v5/market/ticker") == 2
    first = twin.requests[0]
    assert (first.provider, first.method, first.path, first.query) == ("okx", "GET", "/api/v5/market/ticker", BTC_SWAP)
    assert twin.requests[2].headers["CG-API-KEY"] == "test-key"
    twin.clear_requests()
    assert twin.request_count() == 0 and twin.requests == []


async def test_http_control_api_drives_faults_plan_latency_and_requests(
    twin: RecordedTwin, client: httpx.AsyncClient
) -> None:
    assert (await client.get("/_twin/health")).status_code == 200
    r = await client.post(
        "/_twin/faults", json={"provider": "okx", "endpoint": "/api/v5/market/ticker", "kind": "empty"}
    )
    assert r.status_code == 200
    assert (await client.get("/okx/api/v5/market/ticker", params=BTC_SWAP)).json()["data"] == []
    assert (await client.post("/_twin/faults", json={"provider": "okx", "kind": "nope"})).status_code == 400
    await client.delete("/_twin/faults")
    assert (await client.get("/okx/api/v5/market/ticker", params=BTC_SWAP)).json()["data"]
    assert (await client.post("/_twin/plan", json={"plan": "standard"})).json() == {"plan": "standard"}
    assert twin.plan == "standard"
    await client.post("/_twin/latency", json={"ms": 5})
    assert twin.latency_ms == 5
    await client.post("/_twin/latency", json={"ms": 0})
    listing = (await client.get("/_twin/requests", params={"provider": "okx"})).json()
    assert listing["count"] == 2 and listing["requests"][0]["path"] == "/api/v5/market/ticker"
    await client.delete("/_twin/requests")
    assert twin.request_count() == 0
