"""The upstream rate limiter: calls over budget wait up to a bound, then fail locally as rate_limited."""

from __future__ import annotations

import time

import grpc
import pytest
from cryptosignals.v1 import coinglass_pb2, coinglass_pb2_grpc

from providers.errors import ErrorKind, ProviderError
from providers.http import ProviderHttp
from providers.okx import OkxClient
from providers.ratelimit import UpstreamLimiter
from service.settings import SettingsError, load_settings
from tests.stack import running_stack
from twin import RecordedTwin


async def test_calls_over_budget_fail_locally_without_reaching_upstream(twin: RecordedTwin) -> None:
    limiter = UpstreamLimiter({"okx": 2}, max_wait=0.2)
    http = ProviderHttp("okx", twin.base_urls()["OKX_BASE_URL"], limiter=limiter, max_attempts=1)
    twin.clear_requests()
    try:
        client = OkxClient(http)
        await client.ticker("BTC")
        await client.ticker("ETH")
        started = time.monotonic()
        with pytest.raises(ProviderError) as caught:
            await client.ticker("SOL")
        waited = time.monotonic() - started
    finally:
        await http.aclose()
    assert caught.value.kind is ErrorKind.RATE_LIMITED
    assert "2 requests/min" in caught.value.message
    assert 0.2 <= waited < 1.0  # waited for the bound, no longer
    # Only the ticker: a stack's outcome filler may read other OKX endpoints of the shared twin meanwhile.
    assert twin.request_count("okx", "/api/v5/market/ticker") == 2


async def test_rubik_statistics_have_their_own_budget(twin: RecordedTwin) -> None:
    limiter = UpstreamLimiter({"okx": 1, "okx_rubik": 5}, max_wait=0.1)
    http = ProviderHttp("okx", twin.base_urls()["OKX_BASE_URL"], limiter=limiter, max_attempts=1)
    try:
        client = OkxClient(http)
        await client.ticker("BTC")
        ratios = await client.long_short_account_ratio("BTC")  # the market budget is spent; rubik's is not
    finally:
        await http.aclose()
    assert ratios


async def test_limit_is_shared_by_every_caller_of_the_service(twin: RecordedTwin) -> None:
    async with (
        running_stack(
            twin, envoy=False, rate_limits="coinglass=2", rate_limit_max_wait_seconds=0.1, cache_enabled=False
        ) as stack,
        grpc.aio.insecure_channel(stack.grpc_target) as channel,
    ):
        # The server's own background load of the supported coins spends from the same budget.
        await stack.server.app.desk.universe.settled()
        stub = coinglass_pb2_grpc.CoinglassServiceStub(channel)
        await stub.ListSupportedCoins(coinglass_pb2.ListSupportedCoinsRequest())
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.ListSupportedCoins(coinglass_pb2.ListSupportedCoinsRequest())
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "requests/min" in (caught.value.details() or "")
    # When to come back: a budget of 2 a minute frees a call every 30 s.
    trailers = dict(caught.value.trailing_metadata() or ())
    assert trailers.get("retry-after") == "30"


def test_bad_rate_limit_setting_names_the_bucket(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RATE_LIMITS", "binance=10")
    with pytest.raises(SettingsError, match="unknown bucket 'binance'"):
        load_settings(_env_file=None)
    monkeypatch.setenv("RATE_LIMITS", "coinglass=lots")
    with pytest.raises(SettingsError, match="coinglass needs a number"):
        load_settings(_env_file=None)
