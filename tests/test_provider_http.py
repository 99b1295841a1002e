"""The shared HTTP layer against the twin: error kinds, retries, Retry-After, key redaction."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from providers.coinapi import STATUS_KINDS, CoinApiClient
from providers.coinglass import CoinglassClient
from providers.errors import ErrorKind, ProviderError
from providers.feargreed import FearGreedClient
from providers.http import ProviderHttp
from providers.okx import OkxClient
from service.app import App
from tests.stack import stack_settings
from twin import RecordedTwin

KEY = "cg-SECRET-KEY-7f3a9"


@pytest.fixture
async def okx(twin: RecordedTwin) -> AsyncIterator[OkxClient]:
    http = ProviderHttp("okx", twin.base_urls()["OKX_BASE_URL"], timeout=0.5, max_attempts=3)
    yield OkxClient(http)
    await http.aclose()


@pytest.fixture
async def coinglass(twin: RecordedTwin) -> AsyncIterator[CoinglassClient]:
    http = ProviderHttp(
        "coinglass", twin.base_urls()["COINGLASS_BASE_URL"], headers={"CG-API-KEY": KEY}, secret=KEY, timeout=0.5
    )
    yield CoinglassClient(http)
    await http.aclose()


async def _error(call: object) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        await call  # type: ignore[misc]
    return caught.value


@pytest.mark.parametrize(
    ("fault", "kind"),
    [
        ("timeout", ErrorKind.TIMEOUT),
        ("rate_limit", ErrorKind.RATE_LIMITED),
        ("server_error", ErrorKind.UPSTREAM),
        ("html", ErrorKind.UPSTREAM),  # an HTML 502 page is an outage, not a payload problem
        ("truncated_json", ErrorKind.BAD_PAYLOAD),
        ("error_envelope", ErrorKind.RATE_LIMITED),  # OKX's default envelope is 50011
        ("empty", ErrorKind.NOT_FOUND),
    ],
)
async def test_okx_faults_become_the_right_error_kind(
    faults: RecordedTwin, okx: OkxClient, fault: str, kind: ErrorKind
) -> None:
    faults.set_fault("okx", "/api/v5/market/ticker", fault, seconds=3)
    error = await _error(okx.ticker("BTC"))
    assert error.kind is kind, error
    assert error.provider == "okx" and error.endpoint == "/api/v5/market/ticker"


async def test_html_page_with_200_is_a_bad_payload(faults: RecordedTwin, okx: OkxClient) -> None:
    faults.set_fault("okx", "/api/v5/market/ticker", "html", status=200)
    assert (await _error(okx.ticker("BTC"))).kind is ErrorKind.BAD_PAYLOAD


async def test_5xx_is_retried_then_succeeds(faults: RecordedTwin, okx: OkxClient) -> None:
    faults.clear_requests()
    faults.set_fault("okx", "/api/v5/market/ticker", "server_error", times=2)
    ticker = await okx.ticker("BTC")
    assert ticker.last > 0
    assert faults.request_count("okx", "/api/v5/market/ticker") == 3


async def test_429_honours_retry_after(faults: RecordedTwin, okx: OkxClient) -> None:
    faults.set_fault("okx", "/api/v5/market/ticker", "rate_limit", retry_after=1, times=1)
    started = time.monotonic()
    await okx.ticker("BTC")
    assert time.monotonic() - started >= 1.0


async def test_a_long_retry_after_fails_fast_as_rate_limited(faults: RecordedTwin, okx: OkxClient) -> None:
    faults.clear_requests()
    faults.set_fault("okx", "/api/v5/market/ticker", "rate_limit", retry_after=60)
    error = await _error(okx.ticker("BTC"))
    assert error.kind is ErrorKind.RATE_LIMITED and error.retry_after == 60
    assert faults.request_count("okx", "/api/v5/market/ticker") == 1


async def test_4xx_is_not_retried(faults: RecordedTwin, okx: OkxClient) -> None:
    faults.clear_requests()
    error = await _error(okx.http.get_json("/api/v5/no/such/path"))
    assert error.kind is ErrorKind.NOT_FOUND
    assert faults.request_count("okx", "/api/v5/no/such/path") == 1


async def test_unknown_instrument_is_not_found(okx: OkxClient) -> None:
    error = await _error(okx.ticker("NOPECOIN"))
    assert error.kind is ErrorKind.NOT_FOUND and error.provider_code == "51001"


async def test_coinglass_errors_never_contain_the_key(
    faults: RecordedTwin, coinglass: CoinglassClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        for fault in ("timeout", "rate_limit", "server_error", "html", "truncated_json", "error_envelope", "empty"):
            faults.set_fault("coinglass", "*", fault, seconds=3)
            error = await _error(coinglass.supported_coins())
            assert KEY not in str(error) and KEY not in error.reason
    assert KEY not in caplog.text


async def test_coinglass_plan_and_key_errors_are_classified(twin: RecordedTwin, coinglass: CoinglassClient) -> None:
    twin.set_plan("hobbyist")
    try:
        plan = await _error(coinglass.coins_markets())
    finally:
        twin.set_plan("professional")
    assert plan.kind is ErrorKind.PLAN
    assert plan.message == "your Coinglass plan does not include /api/futures/coins-markets"
    bad_key = ProviderHttp("coinglass", twin.base_urls()["COINGLASS_BASE_URL"], headers={"CG-API-KEY": "invalid"})
    try:
        assert (await _error(CoinglassClient(bad_key).supported_coins())).kind is ErrorKind.AUTH
    finally:
        await bad_key.aclose()


async def test_coinglass_parses_numbers_sent_as_strings(coinglass: CoinglassClient) -> None:
    history = await coinglass.open_interest_history("BTC", "h1", 25)
    assert len(history) == 25
    assert all(isinstance(p.close, float) and p.close > 0 for p in history)
    assert history[0].time < history[-1].time


async def test_missing_keys_are_not_configured_without_any_request(twin: RecordedTwin) -> None:
    # The service's own wiring with no keys: keyless providers reach the twin, keyed ones must not.
    app = await App.create(stack_settings(twin, keys=False, cache_enabled=False))
    try:
        await app.desk.universe.settled()  # the coin list (OKX's swaps, keyless) loads at start
        twin.clear_requests()
        for call, variable in (
            (app.clients.coinglass.supported_coins(), "COINGLASS_API_KEY"),
            (app.clients.coinapi.exchange_rate("BTC"), "COINAPI_KEY"),
            (app.clients.lunarcrush.social("BTC"), "LUNARCRUSH_API_KEY"),
        ):
            error = await _error(call)
            assert error.kind is ErrorKind.NOT_CONFIGURED and error.message == f"{variable} is not set"
        assert twin.request_count() == 0
        await app.clients.okx.ticker("BTC")  # the control: this app's calls do reach the twin and are counted
        assert twin.request_count() == 1
    finally:
        await app.aclose()


async def test_coinapi_550_means_no_data_for_that_coin(twin: RecordedTwin) -> None:
    http = ProviderHttp(
        "coinapi", twin.base_urls()["COINAPI_BASE_URL"], headers={"X-CoinAPI-Key": "k"}, status_kinds=STATUS_KINDS
    )
    try:
        assert (await CoinApiClient(http).exchange_rate("BTC")).rate > 0
        assert (await _error(CoinApiClient(http).exchange_rate("NOPECOIN"))).kind is ErrorKind.NOT_FOUND
    finally:
        await http.aclose()


async def test_fear_greed_is_read_newest_first(twin: RecordedTwin) -> None:
    http = ProviderHttp("feargreed", twin.base_urls()["FEAR_GREED_BASE_URL"])
    try:
        readings = await FearGreedClient(http).history(3)
    finally:
        await http.aclose()
    assert readings[0].time > readings[1].time
    assert 0 <= readings[0].value <= 100


async def test_health_records_last_success_and_last_error(faults: RecordedTwin, okx: OkxClient) -> None:
    await okx.ticker("BTC")
    assert okx.http.health.last_success is not None
    faults.set_fault("okx", "*", "server_error")
    await _error(okx.ticker("BTC"))
    assert okx.http.health.last_error_kind == "upstream"


async def test_a_redirect_is_an_upstream_failure_and_the_key_never_follows_it() -> None:
    """aiohttp follows redirects by default and resends custom headers (CG-API-KEY) to the new host."""
    elsewhere_saw: list[dict[str, str]] = []

    async def elsewhere(request: web.Request) -> web.Response:
        elsewhere_saw.append(dict(request.headers))
        return web.json_response({"code": "0", "data": []})

    async def redirecting(request: web.Request) -> web.Response:
        raise web.HTTPFound(f"http://127.0.0.1:{elsewhere_port}/api/futures/supported-coins")

    runners = []
    ports = []
    for handler in (elsewhere, redirecting):
        app = web.Application()
        app.router.add_get("/{tail:.*}", handler)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        ports.append(runner.addresses[0][1])
    elsewhere_port, redirect_port = ports
    http = ProviderHttp("coinglass", f"http://127.0.0.1:{redirect_port}", headers={"CG-API-KEY": KEY}, secret=KEY)
    try:
        error = await _error(CoinglassClient(http).supported_coins())
    finally:
        await http.aclose()
        for runner in runners:
            await runner.cleanup()
    assert error.kind is ErrorKind.UPSTREAM and "redirect" in error.message
    assert elsewhere_saw == []
