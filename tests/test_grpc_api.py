"""gRPC directly: reflection, health, SignalService and every CoinglassService RPC."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest
from cryptosignals.v1 import coinglass_pb2, coinglass_pb2_grpc, signal_pb2, signal_pb2_grpc
from google.protobuf import json_format
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from tests.stack import FAKE_KEYS, running_stack
from twin import RecordedTwin


async def test_reflection_lists_both_services_and_health(channel: grpc.aio.Channel) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)

    async def requests() -> AsyncIterator[reflection_pb2.ServerReflectionRequest]:
        yield reflection_pb2.ServerReflectionRequest(list_services="")

    services = set()
    async for reply in stub.ServerReflectionInfo(requests()):
        services |= {s.name for s in reply.list_services_response.service}
    assert {
        "cryptosignals.v1.SignalService",
        "cryptosignals.v1.CoinglassService",
        "grpc.health.v1.Health",
    } <= services


async def test_idle_reflection_sessions_hold_no_thread_and_block_nothing(channel: grpc.aio.Channel) -> None:
    # grpcurl, grpcui or Postman sessions left open: more idle reflection streams than the loop's
    # default executor has threads (at most 32). A threaded servicer would hold one thread each,
    # and the next reflection answer (and DNS lookups, backtests, charts) would wait for them.
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    hold = asyncio.Event()

    async def idle() -> AsyncIterator[reflection_pb2.ServerReflectionRequest]:
        await hold.wait()
        yield reflection_pb2.ServerReflectionRequest(list_services="")

    idle_calls = [stub.ServerReflectionInfo(idle()) for _ in range(40)]
    try:
        for call in idle_calls:
            await call.wait_for_connection()

        async def one() -> AsyncIterator[reflection_pb2.ServerReflectionRequest]:
            yield reflection_pb2.ServerReflectionRequest(list_services="")

        replies = [reply async for reply in stub.ServerReflectionInfo(one(), timeout=10)]
        assert replies and replies[0].list_services_response.service
    finally:
        hold.set()
        for call in idle_calls:
            call.cancel()


async def test_health_check_answers_serving(channel: grpc.aio.Channel) -> None:
    stub = health_pb2_grpc.HealthStub(channel)
    for service in ("", "cryptosignals.v1.SignalService", "cryptosignals.v1.CoinglassService"):
        reply = await stub.Check(health_pb2.HealthCheckRequest(service=service))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_get_signal_over_grpc(channel: grpc.aio.Channel) -> None:
    stub = signal_pb2_grpc.SignalServiceStub(channel)
    signal = await stub.GetSignal(signal_pb2.GetSignalRequest(symbol="eth", debug=True))
    assert signal.symbol == "ETH"
    assert signal.signal in (signal_pb2.LONG, signal_pb2.SHORT, signal_pb2.NEUTRAL)
    assert len(signal.factors) == 8
    assert signal.HasField("price")


async def test_bad_symbol_is_invalid_argument_over_grpc(channel: grpc.aio.Channel) -> None:
    stub = signal_pb2_grpc.SignalServiceStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GetSignal(signal_pb2.GetSignalRequest(symbol="$$$"))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "symbol" in (caught.value.details() or "")


COINGLASS_CALLS = [
    ("ListMarkets", coinglass_pb2.ListMarketsRequest(), "markets"),
    ("GetCoinMarket", coinglass_pb2.GetCoinMarketRequest(symbol="BTC"), "currentPrice"),
    ("GetPerpetualMarkets", coinglass_pb2.GetPerpetualMarketsRequest(symbol="BTC"), "pairs"),
    (
        "GetLiquidations",
        coinglass_pb2.GetLiquidationsRequest(symbol="BTC", include_orders=True, include_map=True),
        "windows",
    ),
    ("GetLiquidationHeatmap", coinglass_pb2.GetLiquidationHeatmapRequest(symbol="BTC"), "clusters"),
    ("GetLongShortRatio", coinglass_pb2.GetLongShortRatioRequest(symbol="BTC", interval="h4"), "globalAccount"),
    ("GetFundingRate", coinglass_pb2.GetFundingRateRequest(symbol="BTC", interval="h8"), "exchanges"),
    ("GetOpenInterest", coinglass_pb2.GetOpenInterestRequest(symbol="BTC", interval="1h"), "history"),
    ("ListSupportedCoins", coinglass_pb2.ListSupportedCoinsRequest(), "coins"),
    ("ListExchanges", coinglass_pb2.ListExchangesRequest(), "exchanges"),
    ("GetDashboard", coinglass_pb2.GetDashboardRequest(symbol="BTC"), "market"),
]


@pytest.mark.parametrize(("rpc", "request_message", "field"), COINGLASS_CALLS, ids=[c[0] for c in COINGLASS_CALLS])
async def test_every_coinglass_rpc_returns_typed_data(
    channel: grpc.aio.Channel, rpc: str, request_message: object, field: str
) -> None:
    stub = coinglass_pb2_grpc.CoinglassServiceStub(channel)
    reply = await getattr(stub, rpc)(request_message)
    body = json_format.MessageToDict(reply)
    assert body.get(field), (rpc, body)


async def test_liquidation_windows_cover_1h_to_24h(channel: grpc.aio.Channel) -> None:
    stub = coinglass_pb2_grpc.CoinglassServiceStub(channel)
    reply = await stub.GetLiquidations(coinglass_pb2.GetLiquidationsRequest(symbol="BTC"))
    windows = {w.window: w for w in reply.windows}
    assert list(windows) == ["1h", "4h", "12h", "24h"]
    assert windows["24h"].total_usd >= windows["1h"].total_usd > 0
    assert windows["24h"].total_usd == pytest.approx(windows["24h"].long_usd + windows["24h"].short_usd, rel=1e-6)


@pytest.mark.parametrize(
    ("rpc", "request_message"),
    [
        ("GetLongShortRatio", coinglass_pb2.GetLongShortRatioRequest(symbol="BTC", interval="2h")),
        ("GetFundingRate", coinglass_pb2.GetFundingRateRequest(symbol="BTC", interval="h1")),
        ("GetOpenInterest", coinglass_pb2.GetOpenInterestRequest(symbol="BTC", interval="weekly")),
    ],
)
async def test_bad_interval_is_invalid_argument_naming_the_allowed_values(
    channel: grpc.aio.Channel, rpc: str, request_message: object
) -> None:
    stub = coinglass_pb2_grpc.CoinglassServiceStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await getattr(stub, rpc)(request_message)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "interval must be one of" in (caught.value.details() or "")


async def test_unknown_coin_is_not_found(channel: grpc.aio.Channel) -> None:
    stub = coinglass_pb2_grpc.CoinglassServiceStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GetCoinMarket(coinglass_pb2.GetCoinMarketRequest(symbol="NOPECOIN"))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


async def test_without_coinglass_key_coinglass_rpcs_are_failed_precondition(twin: RecordedTwin) -> None:
    async with (
        running_stack(twin, envoy=False, keys=False) as stack,
        grpc.aio.insecure_channel(stack.grpc_target) as channel,
    ):
        stub = coinglass_pb2_grpc.CoinglassServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.GetCoinMarket(coinglass_pb2.GetCoinMarketRequest(symbol="BTC"))
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert caught.value.details() == "COINGLASS_API_KEY is not set"


async def test_plan_without_an_endpoint_is_permission_denied_naming_it(twin: RecordedTwin) -> None:
    twin.set_plan("hobbyist")
    try:
        async with (
            running_stack(twin, envoy=False) as stack,
            grpc.aio.insecure_channel(stack.grpc_target) as channel,
        ):
            stub = coinglass_pb2_grpc.CoinglassServiceStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.ListMarkets(coinglass_pb2.ListMarketsRequest())
            # The dashboard still answers with what the plan includes, and names what it does not.
            dashboard = await stub.GetDashboard(coinglass_pb2.GetDashboardRequest(symbol="BTC"))
    finally:
        twin.set_plan("professional")
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "/api/futures/coins-markets" in (caught.value.details() or "")
    failed = {f.part: f for f in dashboard.failures}
    assert failed["market"].error_kind == "plan"
    assert dashboard.HasField("funding")  # 8h history is in every plan; sub-4h history is not on hobbyist
    for key in FAKE_KEYS.values():
        assert key not in str(dashboard)
