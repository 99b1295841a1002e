"""Each named mechanism has a test that fails without it (issue 17).

- upstream coalescing and TTL, with the signal memo off (so the memo cannot carry them);
- the signal memo: reuse within its TTL, one computation for concurrent callers, debug and
  non-debug answers of one period from the same computation, a hurried caller never sharing;
- the Redis lock across replicas (one replica loads, the other waits for its value).

Synchronisation is on events and on the cache's own tasks, never on sleeps; time moves by
swapping the caches' clocks.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Callable

import grpc
import pytest
from cryptosignals.v1 import signal_pb2, signal_pb2_grpc

from providers.cache import UpstreamCache
from providers.cache_store import RedisStore
from providers.deadline import deadline_in
from providers.redis_link import RedisLink
from scoring import ScoringConfig
from service.app import App
from signals.desk import LiveSignal, SignalDesk
from tests.stack import running_stack, stack_settings
from tests.test_cache import Clock
from twin import RecordedTwin


class Computations:
    """Counts the desk's signal computations; can hold the first one until released."""

    def __init__(self, desk: SignalDesk, *, hold_first: bool = False) -> None:
        self._compute = desk._compute
        self.count = 0
        self.first_started = asyncio.Event()
        self.release = asyncio.Event()
        if not hold_first:
            self.release.set()
        desk._compute = self  # type: ignore[method-assign]

    async def __call__(self, symbol: str, config: ScoringConfig) -> LiveSignal:
        self.count += 1
        if self.count == 1:
            self.first_started.set()
            await self.release.wait()
        return await self._compute(symbol, config)


async def until(condition: Callable[[], bool], within: float = 15.0) -> None:
    """Wait until ``condition`` holds (checked every loop turn and millisecond), failing after ``within`` s."""
    deadline = asyncio.get_running_loop().time() + within
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.001)


@pytest.fixture
async def app(twin: RecordedTwin) -> AsyncIterator[App]:
    built = await App.create(stack_settings(twin, signal_cache_seconds=30))
    try:
        yield built
    finally:
        await built.aclose()


# --- upstream cache, with the signal memo off -------------------------------------------------


def per_call(twin: RecordedTwin) -> Counter[tuple[str, str, tuple[tuple[str, str], ...]]]:
    return Counter((r.provider, r.path, tuple(sorted(r.query.items()))) for r in twin.requests)


async def test_upstream_coalescing_and_ttl_hold_with_the_signal_memo_off(twin: RecordedTwin) -> None:
    async with (
        running_stack(twin, envoy=False, signal_cache_seconds=0) as stack,
        grpc.aio.insecure_channel(stack.grpc_target) as channel,
    ):
        cache = stack.server.app.cache
        assert cache is not None
        clock = Clock()
        cache._clock = clock
        stub = signal_pb2_grpc.SignalServiceStub(channel)
        twin.clear_requests()
        # 30 signals at once, each its own computation: only the upstream cache can share their calls.
        replies = await asyncio.gather(
            *(stub.GetSignal(signal_pb2.GetSignalRequest(symbol="BTC"), timeout=20) for _ in range(30))
        )
        cold = per_call(twin)
        assert len({r.score for r in replies}) == 1
        assert len(cold) >= 15 and set(cold.values()) == {1}, cold.most_common(3)
        # Within every TTL: no upstream call at all.
        twin.clear_requests()
        clock.now += 4.9  # the shortest TTL (OKX ticker, CoinAPI spot) is 5 s
        await stub.GetSignal(signal_pb2.GetSignalRequest(symbol="BTC"), timeout=10)
        assert twin.request_count() == 0
        # Past the ticker's 5 s, within the candles' 30 s: only the ticker is fetched again (in the background).
        clock.now += 0.2
        await stub.GetSignal(signal_pb2.GetSignalRequest(symbol="BTC"), timeout=10)
        await asyncio.gather(*cache._tasks)
        assert twin.request_count("okx", "/api/v5/market/ticker") == 1
        assert twin.request_count("okx", "/api/v5/market/candles") == 0
        # Past 30 s: the candles too.
        clock.now += 25
        await stub.GetSignal(signal_pb2.GetSignalRequest(symbol="BTC"), timeout=10)
        await asyncio.gather(*cache._tasks)
        assert twin.request_count("okx", "/api/v5/market/candles") == 1


# --- the signal memo --------------------------------------------------------------------------


async def test_the_memo_reuses_a_signal_within_its_ttl_and_recomputes_after(app: App) -> None:
    clock = Clock()
    app.desk._memo._clock = clock
    computations = Computations(app.desk)
    first = await app.desk.signal("BTC")
    clock.now += 29.9
    assert await app.desk.signal("BTC") is first
    assert computations.count == 1
    clock.now += 0.2  # past SIGNAL_CACHE_SECONDS (30 here)
    again = await app.desk.signal("BTC")
    assert again is not first and computations.count == 2
    assert await app.desk.signal("ETH") is not again and computations.count == 3  # per symbol


async def test_concurrent_callers_share_one_computation(app: App) -> None:
    computations = Computations(app.desk, hold_first=True)
    callers = [asyncio.ensure_future(app.desk.signal("SOL")) for _ in range(20)]
    await computations.first_started.wait()
    await until(lambda: app.desk._memo.stats.coalesced == 19)  # the other 19 joined it
    computations.release.set()
    signals = await asyncio.gather(*callers)
    assert computations.count == 1
    assert all(s is signals[0] for s in signals)


async def test_a_hurried_caller_never_shares_its_signal_or_joins_a_patient_one(app: App) -> None:
    # A hurried caller first: its signal is its own, the next patient caller computes afresh.
    computations = Computations(app.desk)
    with deadline_in(5.0, hurried=True):
        hurried_first = await app.desk.signal("ETH")
    patient = await app.desk.signal("ETH")
    assert patient is not hurried_first and computations.count == 2
    assert await app.desk.signal("ETH") is patient  # the patient one was memoised

    # A patient computation in flight: a hurried caller does not wait for it, it computes its own.
    computations = Computations(app.desk, hold_first=True)
    patient_call = asyncio.ensure_future(app.desk.signal("BTC"))
    await computations.first_started.wait()
    with deadline_in(5.0, hurried=True):
        hurried = await app.desk.signal("BTC")  # returns while the patient one is still held
    assert computations.count == 2 and not patient_call.done()
    computations.release.set()
    patient = await patient_call
    assert patient is not hurried
    assert await app.desk.signal("BTC") is patient and computations.count == 2
    # A hurried caller may read a signal already memoised (fresh, no wait): it is not recomputed.
    with deadline_in(5.0, hurried=True):
        assert await app.desk.signal("BTC") is patient
    assert computations.count == 2


async def test_debug_and_plain_answers_of_one_memo_period_come_from_one_computation(twin: RecordedTwin) -> None:
    async with (
        running_stack(twin, envoy=False, signal_cache_seconds=30) as stack,
        grpc.aio.insecure_channel(stack.grpc_target) as channel,
    ):
        computations = Computations(stack.server.app.desk)
        stub = signal_pb2_grpc.SignalServiceStub(channel)
        concurrent = await asyncio.gather(
            *(
                stub.GetSignal(signal_pb2.GetSignalRequest(symbol="ETH", debug=i % 2 == 1), timeout=10)
                for i in range(10)
            )
        )
        plain = await stub.GetSignal(signal_pb2.GetSignalRequest(symbol="ETH"), timeout=10)
        debug = await stub.GetSignal(signal_pb2.GetSignalRequest(symbol="ETH", debug=True), timeout=10)
    assert computations.count == 1
    assert len(debug.factors) == 8 and debug.config.weights
    assert not plain.factors and not plain.HasField("config")
    stripped = signal_pb2.Signal()
    stripped.CopyFrom(debug)
    stripped.ClearField("factors")  # the debug-only fields
    stripped.ClearField("config")
    stripped.ClearField("timeframes")
    stripped.ClearField("timeframes_aligned")
    assert stripped == plain  # the same computation: same timestamp, numbers and words
    for reply in concurrent:
        if reply.factors:  # debug: the same signal (its timeframes are read per call, from cached candles)
            assert reply.factors == debug.factors and reply.timestamp == debug.timestamp
        else:
            assert reply == plain


# --- the Redis lock across replicas -----------------------------------------------------------


async def test_one_replica_loads_while_the_other_waits_for_its_value(redis_url: str) -> None:
    links = [RedisLink(redis_url), RedisLink(redis_url)]
    a, b = (UpstreamCache(store=RedisStore(link), lock_seconds=10) for link in links)
    a_loading, a_release = asyncio.Event(), asyncio.Event()
    b_loads = 0

    async def load_a() -> str:
        a_loading.set()
        await a_release.wait()
        return "from-a"

    async def load_b() -> str:
        nonlocal b_loads
        b_loads += 1
        return "from-b"

    try:
        first = asyncio.ensure_future(a.get("k", 60, load_a))
        await a_loading.wait()  # replica a holds the key's lock in Redis and is loading
        second = asyncio.ensure_future(b.get("k", 60, load_b))
        assert await links[1].client.exists("cryptosignals:lock:k") == 1
        await until(lambda: b.stats.misses == 1)  # b missed and is waiting on the lock
        a_release.set()
        assert await asyncio.wait_for(first, 10) == "from-a"
        assert await asyncio.wait_for(second, 10) == "from-a"  # b got a's value from Redis
        assert await links[1].client.exists("cryptosignals:lock:k") == 0  # a released its lock
    finally:
        for link in links:
            await link.aclose()
    assert b_loads == 0 and b.stats.shared_waits == 1
