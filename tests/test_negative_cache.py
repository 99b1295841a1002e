"""A provider's NOT_FOUND for (provider, endpoint, coin) is remembered for NEGATIVE_CACHE_SECONDS
(issue 14): a coin LunarCrush does not cover costs one LunarCrush request, not one per signal."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from cryptosignals.v1 import signal_pb2, signal_pb2_grpc

from providers.cache import UpstreamCache
from providers.cache_store import RedisStore
from providers.errors import ErrorKind, ProviderError
from providers.http import ProviderHttp
from providers.lunarcrush import LunarCrushClient
from providers.redis_link import RedisLink
from service.settings import SettingsError, load_settings
from tests.stack import running_stack
from twin import RecordedTwin

COIN_PATH = "/public/coins/SOL/v1"


async def test_300_concurrent_cold_signals_for_a_coin_lunarcrush_does_not_cover_ask_it_once(
    faults: RecordedTwin,
) -> None:
    # LunarCrush answers 404 for SOL's coin metrics: the coin it "does not cover". A signal asks
    # for the coin metrics and the topic at once, so the topic is asked (once, and cached) too.
    faults.set_fault("lunarcrush", COIN_PATH, "server_error", status=404)
    async with (
        running_stack(faults, envoy=False) as stack,
        grpc.aio.insecure_channel(stack.grpc_target) as channel,
    ):
        stub = signal_pb2_grpc.SignalServiceStub(channel)
        before_coin = faults.request_count("lunarcrush", COIN_PATH)
        before_all = faults.request_count("lunarcrush")
        cold = await asyncio.gather(*(stub.GetSignal(signal_pb2.GetSignalRequest(symbol="SOL")) for _ in range(300)))
        assert all(s.symbol == "SOL" and "social" in {m.factor for m in s.missing_factors} for s in cold)
        assert faults.request_count("lunarcrush", COIN_PATH) - before_coin == 1
        assert faults.request_count("lunarcrush") - before_all == 2  # the coin (404) and the topic, once each


async def test_steady_traffic_never_asks_again(faults: RecordedTwin) -> None:
    faults.set_fault("lunarcrush", COIN_PATH, "server_error", status=404)
    # SIGNAL_CACHE_SECONDS=0: every request is its own computation, as a minute of steady traffic
    # is once the signal memo has expired again and again.
    async with (
        running_stack(faults, envoy=False, signal_cache_seconds=0) as stack,
        grpc.aio.insecure_channel(stack.grpc_target) as channel,
    ):
        stub = signal_pb2_grpc.SignalServiceStub(channel)
        before = faults.request_count("lunarcrush", COIN_PATH)
        for _ in range(20):
            later = await asyncio.gather(*(stub.GetSignal(signal_pb2.GetSignalRequest(symbol="SOL")) for _ in range(5)))
            assert all("social" in {m.factor for m in s.missing_factors} for s in later)
        assert faults.request_count("lunarcrush", COIN_PATH) - before == 1


async def test_with_the_negative_cache_off_the_provider_is_asked_again(faults: RecordedTwin) -> None:
    faults.set_fault("lunarcrush", COIN_PATH, "server_error", status=404)
    async with (
        running_stack(faults, envoy=False, signal_cache_seconds=0, negative_cache_seconds=0) as stack,
        grpc.aio.insecure_channel(stack.grpc_target) as channel,
    ):
        stub = signal_pb2_grpc.SignalServiceStub(channel)
        before = faults.request_count("lunarcrush", COIN_PATH)
        for _ in range(3):
            await stub.GetSignal(signal_pb2.GetSignalRequest(symbol="SOL"))
        assert faults.request_count("lunarcrush", COIN_PATH) - before == 3


def test_negative_cache_seconds_default_and_range(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NEGATIVE_CACHE_SECONDS", raising=False)
    assert load_settings(_env_file=None).negative_cache_seconds == 600
    monkeypatch.setenv("NEGATIVE_CACHE_SECONDS", "-1")
    with pytest.raises(SettingsError, match="NEGATIVE_CACHE_SECONDS"):
        load_settings(_env_file=None)


async def test_a_not_found_is_shared_with_other_replicas_through_redis(faults: RecordedTwin, redis_url: str) -> None:
    """Two replicas' HTTP layers on one Redis: the second never asks what the first was told is not found."""
    faults.set_fault("lunarcrush", COIN_PATH, "server_error", status=404)
    links = [RedisLink(redis_url) for _ in range(2)]
    layers = [
        ProviderHttp(
            "lunarcrush",
            faults.base_urls()["LUNARCRUSH_BASE_URL"],
            headers={"Authorization": "Bearer lunar-test"},
            cache=UpstreamCache(store=RedisStore(link), lock_seconds=2),
            ttls={"/": 300},
        )
        for link in links
    ]
    try:
        clients = [LunarCrushClient(layer) for layer in layers]
        before = faults.request_count("lunarcrush", COIN_PATH)
        for client in clients:
            with pytest.raises(ProviderError) as raised:
                await client.social("SOL")
            assert raised.value.kind is ErrorKind.NOT_FOUND
        assert faults.request_count("lunarcrush", COIN_PATH) - before == 1
    finally:
        for layer in layers:
            await layer.aclose()
        for link in links:
            await link.aclose()
