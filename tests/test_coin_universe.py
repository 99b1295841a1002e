"""Unknown coins are refused before they cost upstream quota; known coins are never refused."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from cryptosignals.v1 import coinglass_pb2, coinglass_pb2_grpc, signal_pb2, signal_pb2_grpc

from signals.coin_universe import CoinUniverse
from tests.stack import Stack, running_stack
from twin import RecordedTwin


async def _signal_status(stack: Stack, symbol: str) -> grpc.StatusCode:
    async with grpc.aio.insecure_channel(stack.grpc_target) as channel:
        stub = signal_pb2_grpc.SignalServiceStub(channel)
        try:
            await stub.GetSignal(signal_pb2.GetSignalRequest(symbol=symbol), timeout=10)
        except grpc.aio.AioRpcError as error:
            return error.code()
    return grpc.StatusCode.OK


async def _until_listed(stack: Stack) -> None:
    await stack.server.app.desk.universe.settled()
    assert stack.server.app.desk.universe.listed_count == 3  # the twin lists BTC, ETH, SOL


async def test_a_coin_coinglass_does_not_list_costs_no_upstream_call(twin: RecordedTwin) -> None:
    async with running_stack(twin, envoy=False) as stack:
        await _until_listed(stack)
        twin.clear_requests()
        status = await _signal_status(stack, "NOPECOIN")
        async with grpc.aio.insecure_channel(stack.grpc_target) as channel:
            for call in (
                signal_pb2_grpc.SignalServiceStub(channel).GetMarket(signal_pb2.GetMarketRequest(symbol="NOPECOIN")),
                coinglass_pb2_grpc.CoinglassServiceStub(channel).GetDashboard(
                    coinglass_pb2.GetDashboardRequest(symbol="NOPECOIN")
                ),
            ):
                with pytest.raises(grpc.aio.AioRpcError) as caught:
                    await call
                assert caught.value.code() == grpc.StatusCode.NOT_FOUND
                assert caught.value.details() == "unknown coin NOPECOIN: no provider has data for it"
        assert twin.request_count() == 0
        assert status == grpc.StatusCode.NOT_FOUND
        assert await _signal_status(stack, "ETH") == grpc.StatusCode.OK  # listed coins are untouched


async def test_keyless_a_coin_okx_has_no_swap_for_costs_no_upstream_call(twin: RecordedTwin) -> None:
    """Without a Coinglass key the universe is OKX's perpetual swaps (one public call, hourly)."""
    async with running_stack(twin, envoy=False, keys=False) as stack:
        await stack.server.app.desk.universe.settled()
        assert stack.server.app.desk.universe.listed_count == 3  # the twin's OKX lists BTC, ETH, SOL swaps
        twin.clear_requests()
        assert await _signal_status(stack, "NOPECOIN") == grpc.StatusCode.NOT_FOUND
        assert await _signal_status(stack, "NOPECOIN2") == grpc.StatusCode.NOT_FOUND
        assert twin.request_count() == 0
        assert await _signal_status(stack, "SOL") == grpc.StatusCode.OK


async def test_keyless_an_unknown_coin_is_asked_about_once_while_okx_cannot_list(faults: RecordedTwin) -> None:
    faults.set_fault("okx", "/api/v5/public/open-interest", "server_error")
    async with running_stack(faults, envoy=False, keys=False, cache_enabled=False) as stack:
        await stack.server.app.desk.universe.settled()
        assert stack.server.app.desk.universe.listed_count is None  # no list: nothing refused up front
        faults.clear_faults()
        faults.clear_requests()
        assert await _signal_status(stack, "NOPECOIN") == grpc.StatusCode.NOT_FOUND
        first = faults.request_count()
        assert await _signal_status(stack, "NOPECOIN") == grpc.StatusCode.NOT_FOUND
        assert first > 0 and faults.request_count() == first  # the second time: no upstream call


async def test_a_listed_coin_with_no_data_anywhere_is_asked_about_again(faults: RecordedTwin) -> None:
    async with running_stack(faults, envoy=False, cache_enabled=False) as stack:
        await _until_listed(stack)
        faults.set_fault("*", "*", "empty")
        assert await _signal_status(stack, "SOL") == grpc.StatusCode.NOT_FOUND
        faults.clear_faults()
        assert await _signal_status(stack, "SOL") == grpc.StatusCode.OK


async def test_a_coin_remembered_unknown_before_the_list_loaded_is_served_once_listed() -> None:
    listing = asyncio.Event()

    async def listed() -> list[str]:
        await listing.wait()
        return ["BTC", "NEWCOIN"]

    universe = CoinUniverse(listed)
    assert not universe.refuses("NEWCOIN")  # starts the load; nothing refused before it lands
    universe.remember_unknown("NEWCOIN")  # e.g. every provider said "not found" meanwhile
    assert universe.refuses("NEWCOIN")
    listing.set()
    await universe.settled()
    assert not universe.refuses("NEWCOIN")
    assert universe.refuses("NOPECOIN")
    await universe.aclose()
