"""Scale-out: replicas share the upstream cache and budgets through a real redis-server.

Two servers in this process stand for two replicas: each has its own App (its own in-process
coalescing, cache object and limiter), and they share only REDIS_URL, as separate processes do.
Prometheus metrics are process-global, so per-replica evidence comes from each App's cache
stats and Envoy's per-host counters, not from /metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import grpc
import httpx
import pytest
import redis.asyncio as aioredis
from cryptosignals.v1 import signal_pb2, signal_pb2_grpc
from prometheus_client import REGISTRY

from providers.cache import UpstreamCache
from providers.cache_codec import TAG, CodecError, decode, encode
from providers.cache_store import Claim, RedisStore
from providers.coinapi import ExchangeRate
from providers.errors import ErrorKind, ProviderError
from providers.feargreed import FearGreedReading
from providers.ratelimit import DEFAULT_PER_MINUTE
from providers.redis_link import RedisLink, redacted_url
from service.rpc.server import RunningServer, start_server
from service.settings import SettingsError, load_settings
from tests.redis_server import redis_server
from tests.stack import FAKE_KEYS, stack_settings, start_envoy
from tests.test_cache import Upstream
from tests.test_mechanisms import until
from twin import RecordedTwin


@contextlib.asynccontextmanager
async def replicas(twin: RecordedTwin, count: int = 2, **overrides: Any) -> AsyncIterator[list[RunningServer]]:
    servers = [await start_server(stack_settings(twin, **overrides)) for _ in range(count)]
    try:
        yield servers
    finally:
        for server in servers:
            await server.stop(0.5)


def stub(channel: grpc.aio.Channel) -> signal_pb2_grpc.SignalServiceStub:
    return signal_pb2_grpc.SignalServiceStub(channel)


def redis_errors() -> float:
    return sum(
        sample.value
        for metric in REGISTRY.collect()
        if metric.name == "cryptosignals_redis_errors"
        for sample in metric.samples
        if sample.name.endswith("_total")
    )


async def test_two_replicas_on_a_cold_cache_make_one_upstream_request_per_endpoint(
    twin: RecordedTwin, redis_url: str
) -> None:
    async with replicas(twin, redis_url=redis_url) as servers:
        channels = [grpc.aio.insecure_channel(f"127.0.0.1:{s.port}") for s in servers]
        twin.clear_requests()
        twin.set_latency(50)  # slow upstream: the replicas' cold signals overlap
        try:
            replies = await asyncio.gather(
                *(
                    stub(channels[i % 2]).GetSignal(signal_pb2.GetSignalRequest(symbol="BTC"), timeout=20)
                    for i in range(40)
                )
            )
        finally:
            twin.set_latency(0)
            for channel in channels:
                await channel.close()
        per_endpoint = Counter((r.provider, r.path, tuple(sorted(r.query.items()))) for r in twin.requests)
        assert len({r.score for r in replies}) == 1
        assert per_endpoint and max(per_endpoint.values()) == 1, per_endpoint.most_common(3)
        # The replica that lost a key's lock got the value from Redis instead of upstream.
        assert sum(s.app.cache.stats.shared_waits for s in servers if s.app.cache is not None) > 0
        # Keys never reach Redis: not in key names, not in values.
        client = aioredis.Redis.from_url(redis_url)
        try:
            names = [name async for name in client.scan_iter("*")]
            values = [await client.get(n) for n in names if n.startswith(b"cryptosignals:cache:")]
        finally:
            await client.aclose()
    assert any(n.startswith(b"cryptosignals:cache:okx:/api/v5/market/ticker:") for n in names), names[:5]
    stored = b"\n".join(names + [v for v in values if v is not None])
    for key in FAKE_KEYS.values():
        assert key.encode() not in stored


async def test_ttl_expiry_and_stale_while_revalidate_through_redis(redis_url: str) -> None:
    links = [RedisLink(redis_url), RedisLink(redis_url)]
    a, b = (UpstreamCache(max_stale=1.0, store=RedisStore(link), lock_seconds=2) for link in links)
    upstream = Upstream()
    try:
        assert await a.get("k", 0.5, upstream) == "value-1"
        assert await b.get("k", 0.5, upstream) == "value-1"  # the other replica reads it from Redis
        assert upstream.calls == 1
        await asyncio.sleep(0.6)  # past the TTL, within max stale
        upstream.delay = 0.1
        stale = await asyncio.gather(*(cache.get("k", 0.5, upstream) for cache in (a, b) for _ in range(5)))
        assert set(stale) == {"value-1"}  # answered at once, stale
        await asyncio.sleep(0.3)
        assert upstream.calls == 2  # one refresh for both replicas
        assert await b.get("k", 0.5, upstream) == "value-2"

        upstream.fail, upstream.delay = True, 0.0
        await asyncio.sleep(0.6)
        assert await a.get("k", 0.5, upstream) == "value-2"  # the refresh fails: last good value
        await asyncio.sleep(0.1)
        assert a.stats.refresh_failures + b.stats.refresh_failures == 1
        assert await b.get("k", 0.5, upstream) == "value-2"
        ttl_ms = await links[0].client.pttl("cryptosignals:cache:k")
        assert 0 < ttl_ms <= 1000  # Redis evicts it when max stale ends
        await asyncio.sleep(ttl_ms / 1000 + 0.05)
        assert await links[0].client.exists("cryptosignals:cache:k") == 0
        with pytest.raises(RuntimeError):
            await b.get("k", 0.5, upstream)  # past max stale: never served again
    finally:
        for link in links:
            await link.aclose()


async def test_shared_budget_bounds_upstream_calls_across_replicas(twin: RecordedTwin, redis_url: str) -> None:
    others = ",".join(f"{bucket}=0" for bucket in DEFAULT_PER_MINUTE if bucket != "coinapi")
    async with replicas(
        twin,
        redis_url=redis_url,
        rate_limits=f"{others},coinapi=3",
        rate_limit_max_wait_seconds=0.3,
        cache_enabled=False,
    ) as servers:
        twin.clear_requests()
        statuses = []
        for i in range(4):
            async with grpc.aio.insecure_channel(f"127.0.0.1:{servers[i % 2].port}") as channel:
                started = time.monotonic()
                market = await stub(channel).GetMarket(signal_pb2.GetMarketRequest(symbol="BTC"), timeout=10)
                coinapi = next(s for s in market.sources if s.provider == "coinapi")
                statuses.append((coinapi.status, coinapi.error_kind, time.monotonic() - started))
    assert [s[:2] for s in statuses[:3]] == [("ok", "")] * 3
    assert statuses[3][:2] == ("error", "rate_limited")
    assert 0.3 <= statuses[3][2] < 2.0  # waited for the bound, then failed locally
    assert twin.request_count("coinapi") == 3


async def envoy_host_requests(envoy_admin_port: int) -> dict[str, int]:
    async with httpx.AsyncClient(timeout=5) as client:
        text = (await client.get(f"http://127.0.0.1:{envoy_admin_port}/clusters")).text
    counts: dict[str, int] = {}
    for line in text.splitlines():
        cluster, host, *rest = line.split("::")
        if cluster == "grpc_server" and rest[:1] == ["rq_total"]:
            counts[host] = int(rest[1])
    return counts


async def test_one_envoy_round_robins_rest_calls_over_two_replicas(twin: RecordedTwin, redis_url: str) -> None:
    async with replicas(twin, redis_url=redis_url) as servers:
        upstreams = ",".join(f"127.0.0.1:{s.port}" for s in servers)
        settings = stack_settings(twin, grpc_upstreams=upstreams)
        envoy = await start_envoy(settings)
        try:
            async with httpx.AsyncClient(base_url=envoy.url, timeout=15) as client:
                answers = [await client.get("/signals/BTC") for _ in range(12)]
            per_host = await envoy_host_requests(settings.envoy_admin_port)
        finally:
            envoy.stop()
    assert {a.status_code for a in answers} == {200}
    assert set(per_host) == {f"127.0.0.1:{s.port}" for s in servers}
    assert all(count >= 3 for count in per_host.values()), per_host  # both replicas answered


async def test_redis_going_away_degrades_to_in_process_caching(
    twin: RecordedTwin, caplog: pytest.LogCaptureFixture
) -> None:
    password = "redis-PASSWORD-9e1f"  # a test server's password: must never be logged
    with redis_server(password=password) as server:
        async with (
            replicas(twin, count=1, redis_url=server.url, signal_cache_seconds=0) as (replica,),
            grpc.aio.insecure_channel(f"127.0.0.1:{replica.port}") as channel,
        ):
            await stub(channel).GetSignal(signal_pb2.GetSignalRequest(symbol="BTC"), timeout=10)
            assert replica.app.redis is not None
            assert await replica.app.redis.client.dbsize() > 0  # it was using Redis
            errors_before = redis_errors()
            server.stop()
            with caplog.at_level(logging.WARNING, logger="cryptosignals.redis"):
                started = time.monotonic()
                cold = await stub(channel).GetSignal(signal_pb2.GetSignalRequest(symbol="ETH"), timeout=10)
                elapsed = time.monotonic() - started
                twin.clear_requests()
                warm = await stub(channel).GetSignal(signal_pb2.GetSignalRequest(symbol="ETH"), timeout=10)
    assert cold.coverage > 0 and warm.score == pytest.approx(cold.score)
    assert elapsed < 3.0  # a dead Redis costs one failed connect, not a timeout per lookup
    assert twin.request_count() == 0  # the warm call was answered from the in-process copy
    assert redis_errors() > errors_before
    warnings = [r.getMessage() for r in caplog.records if r.name == "cryptosignals.redis"]
    assert len(warnings) == 1, warnings  # rate-limited: one warning, not one per lookup
    assert f"127.0.0.1:{server.port}" in warnings[0] and password not in caplog.text


async def test_a_dead_lock_holder_delays_the_load_only_until_its_lock_expires(redis_url: str) -> None:
    link = RedisLink(redis_url)
    cache, upstream = UpstreamCache(store=RedisStore(link), lock_seconds=5), Upstream()
    try:
        # A replica took the key's lock and died before writing a value.
        await link.client.set("cryptosignals:lock:k", "dead-replica", px=300)
        started = time.monotonic()
        assert await cache.get("k", 5, upstream) == "value-1"
        waited = time.monotonic() - started
    finally:
        await link.aclose()
    assert 0.25 <= waited < 1.5
    assert upstream.calls == 1


async def test_a_replica_waiting_on_a_failed_load_gets_its_failure_instead_of_calling_again(redis_url: str) -> None:
    # In-process waiters share a failed load's task; a replica waiting on another's load used to
    # take the lock as it was released and call upstream again (under a cold burst, every load
    # that failed or was refused was made once per replica).
    links = [RedisLink(redis_url), RedisLink(redis_url)]
    stores = [RedisStore(link) for link in links]
    a, b = (UpstreamCache(store=store, lock_seconds=10) for store in stores)
    a_loading, a_release, b_refused = asyncio.Event(), asyncio.Event(), asyncio.Event()
    b_loads = 0
    lock = stores[1].lock

    async def lock_and_tell(key: Any, seconds: float) -> Claim:
        claim = await lock(key, seconds)
        if claim.token is None:
            b_refused.set()
        return claim

    stores[1].lock = lock_and_tell  # type: ignore[method-assign]

    async def load_a() -> str:
        a_loading.set()
        await a_release.wait()
        raise ProviderError("okx", "/api/v5/market/ticker", ErrorKind.TIMEOUT, "no answer within 5.0 s")

    async def load_b() -> str:
        nonlocal b_loads
        b_loads += 1
        return "from-b"

    try:
        first = asyncio.ensure_future(a.get("k", 60, load_a))
        await asyncio.wait_for(a_loading.wait(), 10)  # replica a holds the key's lock and is loading
        second = asyncio.ensure_future(b.get("k", 60, load_b))
        await asyncio.wait_for(b_refused.wait(), 10)  # b found the lock taken: it waits on a's load
        a_release.set()
        with pytest.raises(ProviderError) as at_a:
            await asyncio.wait_for(first, 10)
        with pytest.raises(ProviderError) as at_b:
            await asyncio.wait_for(second, 10)
        assert await links[1].client.exists("cryptosignals:lock:k") == 0  # a released its lock
        assert (at_b.value.kind, at_b.value.message) == (at_a.value.kind, at_a.value.message)
        assert at_b.value.provider == "okx" and at_b.value.endpoint == "/api/v5/market/ticker"
        assert b_loads == 0 and b.stats.shared_failures == 1
        # The failure is not cached: a caller arriving after it loads again.
        assert await asyncio.wait_for(b.get("k", 60, load_b), 10) == "from-b"
        assert b_loads == 1
    finally:
        for link in links:
            await link.aclose()


async def test_a_failure_that_cannot_travel_leaves_the_waiting_replica_to_load(redis_url: str) -> None:
    # Only provider errors are shared (they are what loads raise); anything else: as before.
    links = [RedisLink(redis_url), RedisLink(redis_url)]
    a, b = (UpstreamCache(store=RedisStore(link), lock_seconds=10) for link in links)
    a_loading, a_release = asyncio.Event(), asyncio.Event()

    async def load_a() -> str:
        a_loading.set()
        await a_release.wait()
        raise RuntimeError("a bug")

    try:
        first = asyncio.ensure_future(a.get("k", 60, load_a))
        await asyncio.wait_for(a_loading.wait(), 10)
        second = asyncio.ensure_future(b.get("k", 60, Upstream()))
        await until(lambda: b.stats.misses == 1)
        a_release.set()
        with pytest.raises(RuntimeError):
            await asyncio.wait_for(first, 10)
        assert await asyncio.wait_for(second, 10) == "value-1"
    finally:
        for link in links:
            await link.aclose()


def test_cached_provider_results_survive_the_json_codec() -> None:
    rate = ExchangeRate("BTC", "USD", 97000.5, datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
    readings = [FearGreedReading(25.0, "Extreme Fear", datetime(2026, 1, 2, tzinfo=UTC))]
    raw = {"data": [{"a": "1", "b": None, "c": [1.5, True]}], TAG: "not a tag", "t": (1, "x")}
    for value in (rate, readings, raw, ["BTC", "ETH"], "x", None):
        assert decode(encode(value)) == value
    assert isinstance(decode(encode(rate)), ExchangeRate)


@pytest.mark.parametrize("name", ["os:system", "builtins:eval", "providers.coinapi:ExchangeRate.__init__"])
def test_a_stored_value_cannot_name_an_arbitrary_callable(name: str) -> None:
    forged = json.dumps({TAG: "dataclass", "cls": name, "v": {}}).encode()
    with pytest.raises(CodecError):
        decode(forged)


def test_redis_settings_are_validated_and_the_password_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "http://:hunter2@redis:6379")
    with pytest.raises(SettingsError) as caught:
        load_settings(_env_file=None)
    assert "REDIS_URL" in str(caught.value) and "hunter2" not in str(caught.value)
    monkeypatch.setenv("REDIS_URL", "rediss://user:hunter2@redis:6380/1")
    settings = load_settings(_env_file=None)
    assert "hunter2" not in repr(settings)
    assert redacted_url("rediss://user:hunter2@redis:6380/1") == "rediss://user:***@redis:6380/1"
    assert "hunter2" not in redacted_url("redis://cache.internal:6379/0?password=hunter2")
    monkeypatch.setenv("GRPC_UPSTREAMS", "127.0.0.1:50051, localhost:50052")
    assert load_settings(_env_file=None).grpc_upstream_list == [("127.0.0.1", 50051), ("127.0.0.1", 50052)]
    monkeypatch.setenv("GRPC_UPSTREAMS", "server-a:50051")
    with pytest.raises(SettingsError, match="GRPC_UPSTREAMS"):
        load_settings(_env_file=None)


async def test_a_replica_leaving_costs_no_failed_call(twin: RecordedTwin) -> None:
    """Envoy health-checks every replica over gRPC: one draining after SIGTERM (NOT_SERVING) and then
    gone gets no more calls, and a call that meets its closed connection is retried on the other."""
    servers = [await start_server(stack_settings(twin)) for _ in range(2)]
    leaving = servers[1]
    settings = stack_settings(twin, grpc_upstreams=",".join(f"127.0.0.1:{s.port}" for s in servers))
    envoy = await start_envoy(settings)
    statuses: list[int] = []
    running = True
    try:
        async with httpx.AsyncClient(base_url=envoy.url, timeout=15) as client:

            async def caller() -> None:
                while running:
                    statuses.append((await client.get("/signals/BTC")).status_code)

            callers = [asyncio.ensure_future(caller()) for _ in range(8)]
            await asyncio.sleep(0.5)
            await leaving.stop(grace=0.5, drain=1.0)  # what SIGTERM does
            before_gone = len(statuses)
            await asyncio.sleep(1.0)
            running = False
            await asyncio.gather(*callers)
            async with httpx.AsyncClient() as admin:
                clusters = (await admin.get(f"http://127.0.0.1:{settings.envoy_admin_port}/clusters")).text
    finally:
        envoy.stop()
        await servers[0].stop(0.5)
    assert len(statuses) > before_gone > 0  # calls kept flowing after the replica left
    assert set(statuses) == {200}
    assert f"grpc_server::127.0.0.1:{leaving.port}::health_flags::/failed_active_hc" in clusters
