"""Upstream cache: coalescing, TTL expiry, stale-while-revalidate, and its effect on real signals."""

from __future__ import annotations

import asyncio
from collections import Counter

import grpc
import pytest
from cryptosignals.v1 import signal_pb2, signal_pb2_grpc

from providers.cache import UpstreamCache
from providers.telemetry import CACHE_EVENTS
from service.settings import SettingsError, load_settings
from tests.stack import running_stack
from twin import RecordedTwin


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Upstream:
    """A load function that counts calls and can be made slow or failing."""

    def __init__(self) -> None:
        self.calls = 0
        self.fail = False
        self.delay = 0.0

    async def __call__(self) -> str:
        self.calls += 1
        await asyncio.sleep(self.delay)
        if self.fail:
            raise RuntimeError("upstream down")
        return f"value-{self.calls}"


async def test_concurrent_identical_calls_share_one_upstream_request() -> None:
    cache, upstream = UpstreamCache(), Upstream()
    upstream.delay = 0.05
    values = await asyncio.gather(*(cache.get("k", 10, upstream) for _ in range(100)))
    assert upstream.calls == 1
    assert set(values) == {"value-1"}


async def test_a_fresh_value_is_served_without_calling_upstream_until_its_ttl_passes() -> None:
    clock = Clock()
    cache, upstream = UpstreamCache(max_stale=0, clock=clock), Upstream()
    assert await cache.get("k", 5, upstream) == "value-1"
    clock.now += 4.9
    assert await cache.get("k", 5, upstream) == "value-1"
    clock.now += 0.2
    assert await cache.get("k", 5, upstream) == "value-2"
    assert upstream.calls == 2


async def test_a_fresh_reader_answers_without_awaiting_while_the_value_is_fresh_and_counts_hits() -> None:
    clock = Clock()
    cache, upstream = UpstreamCache(max_stale=60, clock=clock), Upstream()
    read = cache.fresh_reader("k", "signal")
    assert read is not None
    assert read() is None  # nothing loaded yet: the caller must load (``get``)
    assert await cache.get("k", 5, upstream) == "value-1"
    hits, counted = cache.stats.hits, CACHE_EVENTS.value("signal", "hit")
    assert read() == "value-1"
    assert cache.stats.hits == hits + 1
    assert CACHE_EVENTS.value("signal", "hit") == counted + 1  # the metrics' cache_events series
    clock.now += 5.1  # stale (still servable by ``get``), no longer fresh: the reader says so
    assert read() is None
    assert await cache.get("k", 5, upstream) == "value-1"  # stale-while-revalidate
    await asyncio.sleep(0)  # the background refresh
    await asyncio.gather(*cache._tasks)
    assert read() == "value-2"  # the refreshed entry, through the same reader


async def test_a_stale_value_is_served_while_one_refresh_runs() -> None:
    clock = Clock()
    cache, upstream = UpstreamCache(max_stale=60, clock=clock), Upstream()
    await cache.get("k", 5, upstream)
    clock.now += 10  # past the TTL, within max_stale
    upstream.delay = 0.05
    stale = await asyncio.gather(*(cache.get("k", 5, upstream) for _ in range(20)))
    assert set(stale) == {"value-1"}  # answered at once, from cache
    await asyncio.sleep(0.1)
    assert upstream.calls == 2  # exactly one background refresh
    assert await cache.get("k", 5, upstream) == "value-2"
    assert cache.stats.stale == 20


async def test_a_failed_refresh_keeps_the_last_good_value_until_max_age() -> None:
    clock = Clock()
    cache, upstream = UpstreamCache(max_stale=30, clock=clock), Upstream()
    await cache.get("k", 5, upstream)
    upstream.fail = True
    clock.now += 20
    assert await cache.get("k", 5, upstream) == "value-1"
    await asyncio.sleep(0.01)
    assert cache.stats.refresh_failures == 1
    clock.now += 16  # 31 s past the TTL: beyond max_stale, never served again
    with pytest.raises(RuntimeError):
        await cache.get("k", 5, upstream)


async def test_errors_are_never_cached() -> None:
    cache, upstream = UpstreamCache(), Upstream()
    upstream.fail = True
    with pytest.raises(RuntimeError):
        await cache.get("k", 5, upstream)
    upstream.fail = False
    assert await cache.get("k", 5, upstream) == "value-2"


async def test_concurrent_signals_on_a_cold_cache_make_one_request_per_endpoint(twin: RecordedTwin) -> None:
    async with running_stack(twin, envoy=False) as stack, grpc.aio.insecure_channel(stack.grpc_target) as channel:
        twin.clear_requests()
        twin.set_latency(50)  # every upstream call is slow, so the concurrent signals overlap
        try:
            stub = signal_pb2_grpc.SignalServiceStub(channel)
            replies = await asyncio.gather(
                *(stub.GetSignal(signal_pb2.GetSignalRequest(symbol="BTC"), timeout=20) for _ in range(100))
            )
        finally:
            twin.set_latency(0)
        per_endpoint = Counter((r.provider, r.path, tuple(sorted(r.query.items()))) for r in twin.requests)
        assert len({r.score for r in replies}) == 1
        assert per_endpoint and max(per_endpoint.values()) == 1, per_endpoint.most_common(3)
        # Warm: a second wave makes no upstream request at all.
        twin.clear_requests()
        await asyncio.gather(*(stub.GetSignal(signal_pb2.GetSignalRequest(symbol="BTC")) for _ in range(20)))
        assert twin.request_count() == 0


async def test_debug_marks_factors_served_stale(twin: RecordedTwin) -> None:
    # TTLs scaled down to milliseconds: the second call is served stale while refreshing.
    async with (
        running_stack(twin, envoy=False, cache_ttl_scale=0.0001, signal_cache_seconds=0) as stack,
        grpc.aio.insecure_channel(stack.grpc_target) as channel,
    ):
        stub = signal_pb2_grpc.SignalServiceStub(channel)
        first = await stub.GetSignal(signal_pb2.GetSignalRequest(symbol="ETH", debug=True))
        await asyncio.sleep(0.05)
        second = await stub.GetSignal(signal_pb2.GetSignalRequest(symbol="ETH", debug=True))
    assert not any(f.stale for f in first.factors)
    assert any(f.stale for f in second.factors)
    assert second.score == pytest.approx(first.score)


async def test_a_ttl_can_be_set_per_endpoint(twin: RecordedTwin) -> None:
    # The ticker is not cached at all; candles keep their default TTL.
    async with running_stack(
        twin, envoy=False, cache_ttls="okx:/api/v5/market/ticker=0", signal_cache_seconds=0
    ) as stack:
        twin.clear_requests()
        async with grpc.aio.insecure_channel(stack.grpc_target) as channel:
            stub = signal_pb2_grpc.SignalServiceStub(channel)
            for _ in range(2):
                await stub.GetSignal(signal_pb2.GetSignalRequest(symbol="SOL"), timeout=10)
    assert twin.request_count("okx", "/api/v5/market/ticker") == 2
    assert twin.request_count("okx", "/api/v5/market/candles") == 1


@pytest.mark.parametrize(
    "value", ["ticker=5", "binance:/api=5", "okx:api/v5=5", "okx:/api/v5/market/ticker=soon", "okx:/x=-1"]
)
def test_bad_ttl_overrides_stop_start_up_naming_the_setting(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("CACHE_TTLS", value)
    with pytest.raises(SettingsError) as caught:
        load_settings(_env_file=None)
    assert "CACHE_TTLS" in str(caught.value)


async def test_an_endpoint_outside_the_plan_is_not_asked_again(twin: RecordedTwin) -> None:
    """Hobbyist has no 1h history: without remembering the denial, every signal spent five of its
    30 calls a minute on answers it already had."""
    twin.set_plan("hobbyist")
    try:
        async with (
            running_stack(twin, envoy=False, signal_cache_seconds=0) as stack,
            grpc.aio.insecure_channel(stack.grpc_target) as channel,
        ):
            stub = signal_pb2_grpc.SignalServiceStub(channel)
            await stub.GetSignal(signal_pb2.GetSignalRequest(symbol="BTC"), timeout=10)
            twin.clear_requests()
            again = await stub.GetSignal(signal_pb2.GetSignalRequest(symbol="BTC", debug=True), timeout=10)
    finally:
        twin.set_plan("professional")
    # No factor's endpoint is asked again (the debug answer's 1h/4h/1d structure reads its own
    # candles, Coinglass price history, which no live factor uses).
    asked = [r.path for r in twin.requests if r.provider == "coinglass" and r.path != "/api/futures/price/history"]
    assert asked == []
    reasons = {f.factor: f.fallback_reason for f in again.factors}
    assert "coinglass: plan" in reasons["momentum"]  # still explained, without the call
