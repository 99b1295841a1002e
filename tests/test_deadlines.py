"""Deadlines: every RPC is bounded; a client's sooner deadline is honoured and reaches upstream calls,
so a slow provider costs its factor, not the whole answer."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import grpc
import httpx
import pytest
from cryptosignals.v1 import signal_pb2, signal_pb2_grpc

from providers.cache import UpstreamCache
from providers.deadline import deadline_in
from providers.errors import ErrorKind, ProviderError
from providers.http import ProviderHttp
from providers.okx import OkxClient
from tests.stack import Stack, running_stack
from twin import RecordedTwin

COINGLASS_FACTORS = {"liquidations", "funding_rate", "momentum", "long_short_ratio", "smart_money", "open_interest"}


@pytest.fixture(scope="module")
async def short_deadline_stack(twin: RecordedTwin) -> AsyncIterator[Stack]:
    # Server deadline 1 s, upstream timeout 5 s: only the deadline can cut a slow upstream call short.
    async with running_stack(
        twin, rpc_deadline_seconds=1.0, upstream_timeout_seconds=5.0, cache_enabled=False
    ) as stack:
        yield stack


@pytest.fixture(scope="module")
async def long_deadline_stack(twin: RecordedTwin) -> AsyncIterator[Stack]:
    async with running_stack(
        twin, rpc_deadline_seconds=30.0, upstream_timeout_seconds=5.0, cache_enabled=False
    ) as stack:
        yield stack


async def _timed_signal(stack: Stack, client_deadline: float | None) -> tuple[signal_pb2.Signal, float]:
    async with grpc.aio.insecure_channel(stack.grpc_target) as channel:
        stub = signal_pb2_grpc.SignalServiceStub(channel)
        started = time.monotonic()
        signal = await stub.GetSignal(signal_pb2.GetSignalRequest(symbol="BTC", debug=True), timeout=client_deadline)
        return signal, time.monotonic() - started


def _assert_coinglass_cut_short_and_okx_used(signal: signal_pb2.Signal) -> None:
    by_factor = {f.factor: f for f in signal.factors}
    for factor in COINGLASS_FACTORS:
        assert by_factor[factor].source.startswith("okx:"), by_factor[factor].source
        assert "coinglass: timeout" in by_factor[factor].fallback_reason, by_factor[factor].fallback_reason


async def test_client_deadline_reaches_upstream_calls_and_the_signal_answers_in_time(
    faults: RecordedTwin, long_deadline_stack: Stack
) -> None:
    faults.set_fault("coinglass", "*", "latency", latency_ms=4000)
    signal, elapsed = await _timed_signal(long_deadline_stack, client_deadline=1.5)
    # Answered before the client gave up, with the slow provider's factors from the fallback.
    assert elapsed < 1.5
    _assert_coinglass_cut_short_and_okx_used(signal)
    assert signal.coverage == pytest.approx(1.0)


async def test_server_deadline_bounds_a_call_that_sets_none(faults: RecordedTwin, short_deadline_stack: Stack) -> None:
    faults.set_fault("coinglass", "*", "latency", latency_ms=4000)
    signal, elapsed = await _timed_signal(short_deadline_stack, client_deadline=None)
    assert elapsed < 1.5
    _assert_coinglass_cut_short_and_okx_used(signal)


async def test_coinglass_endpoint_past_the_deadline_is_a_json_504_in_time(
    faults: RecordedTwin, short_deadline_stack: Stack
) -> None:
    faults.set_fault("coinglass", "*", "latency", latency_ms=4000)
    async with httpx.AsyncClient(base_url=short_deadline_stack.rest_url, timeout=10) as client:
        started = time.monotonic()
        response = await client.get("/coinglass/funding-rate/BTC")
        elapsed = time.monotonic() - started
    assert response.status_code == 504
    body = response.json()
    assert body["code"] == grpc.StatusCode.DEADLINE_EXCEEDED.value[0]
    assert "coinglass" in body["message"] and "deadline" in body["message"]
    assert elapsed < 1.5


async def test_all_providers_slower_than_the_deadline_is_unavailable_naming_each_timeout(
    faults: RecordedTwin, short_deadline_stack: Stack
) -> None:
    faults.set_fault("*", "*", "latency", latency_ms=4000)
    async with httpx.AsyncClient(base_url=short_deadline_stack.rest_url, timeout=10) as client:
        started = time.monotonic()
        response = await client.get("/signals/BTC")
        elapsed = time.monotonic() - started
    assert response.status_code == 503, response.text
    message = response.json()["message"]
    for provider in ("coinglass", "okx", "lunarcrush"):
        assert f"{provider}: timeout" in message
    assert elapsed < 1.5


async def test_rest_caller_sets_its_deadline_with_grpc_timeout(
    faults: RecordedTwin, long_deadline_stack: Stack
) -> None:
    faults.set_fault("coinglass", "*", "latency", latency_ms=4000)
    async with httpx.AsyncClient(base_url=long_deadline_stack.rest_url, timeout=10) as client:
        started = time.monotonic()
        response = await client.get("/signals/BTC?debug=true", headers={"grpc-timeout": "1500m"})
        elapsed = time.monotonic() - started
    assert response.status_code == 200, response.text
    assert elapsed < 1.5
    sources = {f["factor"]: f["source"] for f in response.json()["factors"]}
    assert all(sources[factor].startswith("okx:") for factor in COINGLASS_FACTORS), sources


@pytest.fixture
async def cold_cached_stack(twin: RecordedTwin) -> AsyncIterator[Stack]:
    async with running_stack(twin, envoy=False, rpc_deadline_seconds=30.0, upstream_timeout_seconds=5.0) as stack:
        yield stack


async def test_an_impatient_caller_answers_in_time_without_degrading_a_patient_one(
    faults: RecordedTwin, cold_cached_stack: Stack
) -> None:
    faults.set_fault("coinglass", "*", "latency", latency_ms=1500)
    faults.clear_requests()
    request = signal_pb2.GetSignalRequest(symbol="ETH", debug=True)
    async with grpc.aio.insecure_channel(cold_cached_stack.grpc_target) as channel:
        stub = signal_pb2_grpc.SignalServiceStub(channel)
        started = time.monotonic()
        # The impatient call starts the (slow) Coinglass loads; the patient one joins them.
        impatient = asyncio.ensure_future(stub.GetSignal(request, timeout=0.8))
        await asyncio.sleep(0.05)
        patient = asyncio.ensure_future(stub.GetSignal(request))
        hurried_signal = await impatient
        hurried_elapsed = time.monotonic() - started
        full_signal = await patient
    assert hurried_elapsed < 0.8
    _assert_coinglass_cut_short_and_okx_used(hurried_signal)
    sources = {f.factor: f.source for f in full_signal.factors}
    assert all(sources[factor].startswith("coinglass:") for factor in COINGLASS_FACTORS), sources
    # The impatient caller's loads went on and served the patient one: no endpoint asked twice.
    # (Price history is the debug answer's 1h/4h/1d structure: one call per interval, not a factor's.)
    coinglass_paths = {
        r.path for r in faults.requests if r.provider == "coinglass" and r.path != "/api/futures/price/history"
    }
    assert coinglass_paths and all(faults.request_count("coinglass", path) == 1 for path in coinglass_paths)


async def test_with_no_time_left_only_cached_data_is_served_and_nothing_is_sent(twin: RecordedTwin) -> None:
    http = ProviderHttp("okx", twin.base_urls()["OKX_BASE_URL"], cache=UpstreamCache())
    okx = OkxClient(http)
    try:
        twin.clear_requests()
        with deadline_in(0.05), pytest.raises(ProviderError) as caught:  # less than the reserve: no time left
            await okx.ticker("BTC")
        assert caught.value.kind is ErrorKind.TIMEOUT
        assert twin.request_count() == 0  # a paid call is not started for a caller who cannot wait for it
        cached = await okx.ticker("BTC")
        with deadline_in(0.05):
            assert await okx.ticker("BTC") == cached  # what is cached is still served
    finally:
        await http.aclose()
