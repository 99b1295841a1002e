"""Streamed signals: SSE through Envoy and gRPC server streaming, one refresh loop per coin.

Stacks here run without caches and with a fast refresh so that a change the twin makes reaches
watchers within a round; every wait is on an event the stream delivers, bounded generously.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import grpc
import httpx
import pytest
from cryptosignals.v1 import live_pb2, live_pb2_grpc

from signals.hub import SignalHub
from tests.stack import Stack, running_stack
from twin import RecordedTwin

FAST: dict[str, Any] = {"cache_enabled": False, "signal_cache_seconds": 0, "watch_refresh_seconds": 0.3}


@pytest.fixture
async def live_stack(faults: RecordedTwin) -> AsyncIterator[Stack]:
    async with running_stack(faults, watch_max_per_client=100, **FAST) as stack:
        yield stack


async def sse_events(response: httpx.Response) -> AsyncIterator[dict[str, Any]]:
    async for line in response.aiter_lines():
        if line.startswith("data:"):
            yield json.loads(line[5:])


async def test_sse_stream_sends_the_current_signal_at_once_then_changes(live_stack: Stack) -> None:
    twin = live_stack.twin
    async with (
        httpx.AsyncClient(base_url=live_stack.rest_url, timeout=30) as rest,
        rest.stream("GET", "/signals/BTC/stream", params={"min_score_change": 0.01}) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = sse_events(response)
        first = await asyncio.wait_for(anext(events), 20)
        assert first["kind"] == "SIGNAL" and first["symbol"] == "BTC"
        assert first["signal"]["signal"] in {"LONG", "SHORT", "NEUTRAL"}
        # The twin's data changes: LunarCrush now fails, so the social factor drops out of the score.
        twin.set_fault("lunarcrush", "*", "server_error")
        while True:
            event = await asyncio.wait_for(anext(events), 20)
            if event["kind"] == "SIGNAL":
                break
        assert event["signal"]["score"] != first["signal"]["score"]
        assert "social" in {m["factor"] for m in event["signal"]["missingFactors"]}


async def test_heartbeats_keep_a_quiet_stream_alive(live_stack: Stack) -> None:
    live_stack.server.app.hub.heartbeat_seconds = 0.5
    async with grpc.aio.insecure_channel(live_stack.grpc_target) as channel:
        stub = live_pb2_grpc.LiveServiceStub(channel)
        call = stub.WatchSignals(live_pb2.WatchSignalsRequest(symbol="ETH", min_score_change=50))
        kinds = []
        async for event in call:
            kinds.append(event.kind)
            assert event.kind != live_pb2.END, event.message
            if len(kinds) == 3:
                break
        call.cancel()
    assert kinds == [live_pb2.SIGNAL, live_pb2.HEARTBEAT, live_pb2.HEARTBEAT]


async def test_one_refresh_loop_per_coin_however_many_watchers(live_stack: Stack) -> None:
    hub: SignalHub = live_stack.server.app.hub
    async with grpc.aio.insecure_channel(live_stack.grpc_target) as channel:
        stub = live_pb2_grpc.LiveServiceStub(channel)
        calls = [stub.WatchSignals(live_pb2.WatchSignalsRequest(symbol="SOL")) for _ in range(30)]
        for call in calls:
            assert (await call.read()).kind == live_pb2.SIGNAL
        assert hub.watcher_count == 30
        before = hub.refreshes
        await asyncio.sleep(1.0)  # a few refresh rounds (0.3 s each)
        rounds = hub.refreshes - before
        assert 1 <= rounds <= 6  # one loop: rounds, not rounds x 30 watchers
        for call in calls:
            call.cancel()


async def test_a_stream_for_an_unknown_coin_ends_with_a_reason(live_stack: Stack) -> None:
    await live_stack.server.app.desk.universe.settled()
    async with httpx.AsyncClient(base_url=live_stack.rest_url, timeout=30) as rest:
        async with rest.stream("GET", "/signals/NOPECOIN/stream") as response:
            events = [e async for e in sse_events(response)]
        assert [e["kind"] for e in events] == ["END"]
        assert "unknown coin NOPECOIN" in events[0]["message"]
    async with grpc.aio.insecure_channel(live_stack.grpc_target) as channel:
        stub = live_pb2_grpc.LiveServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as failure:
            async for _ in stub.WatchSignals(live_pb2.WatchSignalsRequest(symbol="NOPECOIN")):
                pass
        assert failure.value.code() == grpc.StatusCode.NOT_FOUND


async def test_bad_stream_parameters_are_refused(live_stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=live_stack.rest_url, timeout=30) as rest:
        response = await rest.get("/signals/BTC/stream", params={"min_score_change": 99})
        assert response.status_code == 400
        assert "min_score_change must be between 0 and 50" in response.json()["message"]


async def test_watchers_per_client_are_limited(twin: RecordedTwin) -> None:
    async with (
        running_stack(twin, envoy=False, watch_max_per_client=3, signal_api_keys="same-client,b", **FAST) as stack,
        grpc.aio.insecure_channel(stack.grpc_target) as channel,
    ):
        stub = live_pb2_grpc.LiveServiceStub(channel)
        key = (("authorization", "Bearer same-client"),)
        calls = [stub.WatchSignals(live_pb2.WatchSignalsRequest(symbol="BTC"), metadata=key) for _ in range(3)]
        for call in calls:
            await call.read()
        extra = stub.WatchSignals(live_pb2.WatchSignalsRequest(symbol="BTC"), metadata=key)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await extra.read()
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "at most 3 streams per client" in (refused.value.details() or "")
        other = stub.WatchSignals(live_pb2.WatchSignalsRequest(symbol="BTC"), metadata=(("authorization", "Bearer b"),))
        assert (await other.read()).kind == live_pb2.SIGNAL  # another client is not affected
        for call in [*calls, other]:
            call.cancel()


async def test_a_slow_watcher_is_dropped_and_never_slows_the_others() -> None:
    from tests.test_history_db import live_signal

    rounds = 0

    async def signal_of(symbol: str) -> Any:
        nonlocal rounds
        rounds += 1
        from datetime import UTC, datetime

        return live_signal(symbol, datetime.now(UTC), momentum=float(rounds % 7))

    hub = SignalHub(signal_of, refresh_seconds=0.01)
    slow = hub.watch(("BTC",), "slow")
    fast = hub.watch(("BTC",), "fast")
    received = 0
    while received < 100:  # the fast watcher reads 100 signals while the slow one reads none
        item = await asyncio.wait_for(fast.queue.get(), 10)
        assert item is not None
        received += 1
    assert slow.ended.startswith("dropped")
    assert hub.watcher_count == 1
    await hub.aclose()
    assert fast.ended.startswith("the server is shutting down")


async def test_shutdown_ends_every_stream_with_a_final_event(twin: RecordedTwin) -> None:
    async with running_stack(twin, envoy=False, **FAST) as stack:
        async with grpc.aio.insecure_channel(stack.grpc_target) as channel:
            stub = live_pb2_grpc.LiveServiceStub(channel)
            call = stub.WatchSignals(live_pb2.WatchSignalsRequest(symbol="BTC", symbols=["ETH"], min_score_change=50))
            assert (await call.read()).kind == live_pb2.SIGNAL
            assert (await call.read()).kind == live_pb2.SIGNAL
            stopping = asyncio.ensure_future(stack.server.stop(5.0))
            events = []
            while True:
                event = await call.read()
                if event is grpc.aio.EOF:
                    break
                events.append(event)
            await stopping
        assert events[-1].kind == live_pb2.END
        assert "shutting down" in events[-1].message
