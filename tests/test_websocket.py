"""GET /ws through Envoy: subscribe/unsubscribe by message, the SSE stream's events, auth, limits,
bad messages and slow consumers. Every wait is on something the socket delivers, bounded generously
(a loaded 2-core machine); nothing sleeps to synchronise.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import httpx
import pytest

from tests.stack import Stack, running_stack
from twin import RecordedTwin

FAST: dict[str, Any] = {"cache_enabled": False, "signal_cache_seconds": 0, "watch_refresh_seconds": 0.3}
KEYS = "alpha,beta"
ALPHA = {"Authorization": "Bearer alpha"}
WAIT = 30.0


@pytest.fixture
async def ws_stack(faults: RecordedTwin) -> AsyncIterator[Stack]:
    async with running_stack(faults, signal_api_keys=KEYS, watch_max_per_client=3, **FAST) as stack:
        yield stack


def ws_url(stack: Stack) -> str:
    return stack.rest_url.replace("http://", "ws://") + "/ws"


async def next_json(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    message = await ws.receive(timeout=WAIT)
    assert message.type is aiohttp.WSMsgType.TEXT, (message.type, message.data)
    body: dict[str, Any] = json.loads(message.data)
    return body


async def until(ws: aiohttp.ClientWebSocketResponse, kind: str, **match: Any) -> dict[str, Any]:
    while True:
        body = await next_json(ws)
        if body["kind"] == kind and all(body.get(k) == v for k, v in match.items()):
            return body


async def closed_with(ws: aiohttp.ClientWebSocketResponse) -> tuple[int | None, list[dict[str, Any]]]:
    """Read to the close frame: (its code, the messages before it)."""
    seen: list[dict[str, Any]] = []
    while True:
        message = await ws.receive(timeout=WAIT)
        if message.type is aiohttp.WSMsgType.TEXT:
            seen.append(json.loads(message.data))
            continue
        assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING)
        return ws.close_code, seen


async def test_subscribe_gets_the_current_signal_then_each_change_as_the_sse_stream(ws_stack: Stack) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(ws_url(ws_stack), headers=ALPHA) as ws,
        httpx.AsyncClient(base_url=ws_stack.rest_url, timeout=WAIT, headers=ALPHA) as rest,
        rest.stream("GET", "/signals/BTC/stream") as sse,
    ):
        await ws.send_json({"type": "subscribe", "symbols": ["btc", "ETH-USDT-SWAP"], "min_score_change": 0.01})
        assert await next_json(ws) == {"kind": "SUBSCRIBED", "symbols": ["BTC", "ETH"]}
        first: dict[str, dict[str, Any]] = {}
        while len(first) < 2:  # the current signal of each coin at once
            event = await until(ws, "SIGNAL")
            first[event["symbol"]] = event
        # The same event as the SSE stream's: the same fields, the same signal.
        sse_event = None
        async for line in sse.aiter_lines():
            if line.startswith("data:"):
                sse_event = json.loads(line[5:])
                break
        assert sse_event is not None
        assert set(first["BTC"]) == set(sse_event) == {"kind", "symbol", "time", "signal", "message"}
        assert set(first["BTC"]["signal"]) == set(sse_event["signal"])
        assert first["BTC"]["signal"]["score"] == sse_event["signal"]["score"]
        # The data changes (LunarCrush fails): the change reaches the socket.
        ws_stack.twin.set_fault("lunarcrush", "*", "server_error")
        while True:
            event = await until(ws, "SIGNAL", symbol="BTC")
            if "social" in {m["factor"] for m in event["signal"]["missingFactors"]}:
                break
        await ws.send_json({"type": "unsubscribe", "symbol": "ETH"})
        assert await until(ws, "UNSUBSCRIBED") == {"kind": "UNSUBSCRIBED", "symbols": ["BTC"]}


async def test_auth_by_header_or_browser_subprotocol(ws_stack: Stack) -> None:
    url = ws_url(ws_stack)
    async with aiohttp.ClientSession() as session:
        for headers, status in (({}, 401), ({"Authorization": "Bearer wrong"}, 401)):
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await session.ws_connect(url, headers=headers)
            assert refused.value.status == status
        async with session.get(ws_stack.rest_url + "/ws") as plain:  # no key: refused before anything else
            assert plain.status == 401 and "missing API key" in (await plain.json())["message"]
        async with session.get(ws_stack.rest_url + "/ws", headers=ALPHA) as plain:
            assert plain.status == 400 and "needs a WebSocket upgrade" in (await plain.json())["message"]
        # A browser cannot set headers: the key rides as a subprotocol, the server answers the other one.
        async with session.ws_connect(url, protocols=("cryptosignals.v1", "bearer.beta")) as ws:
            assert ws.protocol == "cryptosignals.v1"
            await ws.send_json({"type": "subscribe", "symbol": "SOL"})
            assert await next_json(ws) == {"kind": "SUBSCRIBED", "symbols": ["SOL"]}
            assert (await until(ws, "SIGNAL"))["symbol"] == "SOL"
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await session.ws_connect(url, protocols=("cryptosignals.v1", "bearer.nope"))
        assert refused.value.status == 401


async def test_per_client_limits_are_the_streams_limits(ws_stack: Stack) -> None:
    url = ws_url(ws_stack)
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(url, headers=ALPHA) as ws,
        httpx.AsyncClient(base_url=ws_stack.rest_url, timeout=WAIT, headers=ALPHA) as rest,
        rest.stream("GET", "/signals/BTC/stream") as sse,
    ):
        assert sse.status_code == 200  # one of alpha's 3 streams
        await ws.send_json({"type": "subscribe", "symbols": ["BTC", "ETH", "SOL"]})
        error = await until(ws, "ERROR")
        assert error["code"] == "limit" and error["symbol"] == "SOL"
        assert "at most 3 streams per client" in error["message"]
        assert await until(ws, "SUBSCRIBED") == {"kind": "SUBSCRIBED", "symbols": ["BTC", "ETH"]}
        # Another client is not affected.
        async with session.ws_connect(url, headers={"Authorization": "Bearer beta"}) as other:
            await other.send_json({"type": "subscribe", "symbols": ["SOL"]})
            assert await next_json(other) == {"kind": "SUBSCRIBED", "symbols": ["SOL"]}
        # Sockets per client: alpha holds one; two more are allowed, a fourth is refused with 429.
        async with session.ws_connect(url, headers=ALPHA), session.ws_connect(url, headers=ALPHA):
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await session.ws_connect(url, headers=ALPHA)
            assert refused.value.status == 429
        # Unsubscribing frees a stream: SOL fits now.
        await ws.send_json({"type": "unsubscribe", "symbols": ["ETH"]})
        await until(ws, "UNSUBSCRIBED")
        await ws.send_json({"type": "subscribe", "symbols": ["SOL"]})
        assert await until(ws, "SUBSCRIBED") == {"kind": "SUBSCRIBED", "symbols": ["BTC", "SOL"]}
        # Shutdown: every socket is closed with 1001 (going away); the client answers the close.
        stopping = asyncio.create_task(ws_stack.server.live_socket.stop(within=WAIT))
        code, _ = await closed_with(ws)
        await asyncio.wait_for(stopping, WAIT)
        assert code == 1001


@pytest.mark.parametrize(
    ("frame", "code", "close_code"),
    [
        ("not json", "malformed", 1008),
        ('["subscribe"]', "malformed", 1008),
        ('{"type": "watch", "symbols": ["BTC"]}', "malformed", 1008),
        ('{"type": "subscribe", "symbols": "BTC"}', "malformed", 1008),
        (json.dumps({"type": "subscribe", "symbols": ["BTC"], "pad": "x" * 5000}), "too_big", 1009),
        (b"\x00\x01", "malformed", 1003),
    ],
)
async def test_malformed_or_oversized_messages_get_an_error_then_a_close_code(
    stack: Stack, frame: str | bytes, code: str, close_code: int
) -> None:
    async with aiohttp.ClientSession() as session, session.ws_connect(ws_url(stack)) as ws:
        if isinstance(frame, bytes):
            await ws.send_bytes(frame)
        else:
            await ws.send_str(frame)
        got, seen = await closed_with(ws)
        assert [m["kind"] for m in seen] == ["ERROR"] and seen[0]["code"] == code
        assert got == close_code


async def test_bad_requests_leave_the_socket_open(stack: Stack) -> None:
    async with aiohttp.ClientSession() as session, session.ws_connect(ws_url(stack)) as ws:
        await ws.send_json({"type": "subscribe", "symbols": ["NOTACOIN"]})
        error = await next_json(ws)
        assert (error["kind"], error["code"], error["symbol"]) == ("ERROR", "not_found", "NOTACOIN")
        assert await next_json(ws) == {"kind": "SUBSCRIBED", "symbols": []}
        await ws.send_json({"type": "subscribe", "symbols": ["B$C"], "min_score_change": 1})
        assert (await next_json(ws))["code"] == "bad_request"
        assert await next_json(ws) == {"kind": "SUBSCRIBED", "symbols": []}  # every answer lists the subscriptions
        await ws.send_json({"type": "subscribe", "symbols": ["BTC"], "min_score_change": 99})
        assert "min_score_change" in (await next_json(ws))["message"]
        await ws.send_json({"type": "subscribe", "symbols": ["BTC"]})
        assert (await until(ws, "SIGNAL"))["symbol"] == "BTC"  # still open and serving


async def test_a_slow_consumer_is_closed_with_4008_without_slowing_others(ws_stack: Stack) -> None:
    server = ws_stack.server
    sockets, hub = server.live_socket, server.app.hub
    sockets.heartbeat_seconds = 600.0  # the reader below pauses longer than a ping's answer may take
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(ws_url(ws_stack), headers=ALPHA) as slow,
        session.ws_connect(ws_url(ws_stack), headers={"Authorization": "Bearer beta"}) as fast,
    ):
        for ws in (slow, fast):
            await ws.send_json({"type": "subscribe", "symbols": ["BTC"], "min_score_change": 0})
            await until(ws, "SIGNAL")
        base = hub.latest("BTC") or await hub.current("BTC")
        # New signals, each published once the fast client has received the one before (so it is never
        # behind); the slow client reads nothing until its server-side queue overflows.
        for sent in range(100_000):  # noqa: B007 - reported below
            hub._publish("BTC", dataclasses.replace(base))
            await until(fast, "SIGNAL", symbol="BTC")
            if sockets.slow_consumers_closed:
                break
        assert sockets.slow_consumers_closed == 1, f"no slow consumer after {sent + 1} signals"
        # The slow client now reads: what was written before, then the close frame with 4008.
        code, seen = await closed_with(slow)
        assert code == 4008
        assert seen and all(m["kind"] == "SIGNAL" for m in seen)
        # The fast one received every signal and is still subscribed.
        assert len(seen) < sent + 1 and not fast.closed
        hub._publish("BTC", dataclasses.replace(base))
        assert (await until(fast, "SIGNAL"))["symbol"] == "BTC"


async def test_sockets_per_server_are_bounded(twin: RecordedTwin) -> None:
    async with (
        running_stack(twin, watch_max_streams=2, **FAST) as stack,
        aiohttp.ClientSession() as session,
        session.ws_connect(ws_url(stack)),
        session.ws_connect(ws_url(stack)),
    ):
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await session.ws_connect(ws_url(stack))
        assert refused.value.status == 429
        async with session.get(stack.rest_url + "/ws", headers={"Connection": "Upgrade", "Upgrade": "websocket"}) as r:
            assert r.status == 400  # an incomplete handshake (no Sec-WebSocket-Key) is refused as such


async def test_a_draining_server_fails_its_websocket_health_check(stack: Stack) -> None:
    sockets = stack.server.live_socket
    async with httpx.AsyncClient(timeout=WAIT) as client:
        url = f"http://127.0.0.1:{sockets.port}/health"
        assert (await client.get(url)).status_code == 200
        sockets.draining = True
        try:
            assert (await client.get(url)).status_code == 503
        finally:
            sockets.draining = False


async def test_an_origin_outside_cors_allowed_origins_is_refused(twin: RecordedTwin) -> None:
    async with (
        running_stack(twin, cors_allowed_origins="https://app.example.com", **FAST) as stack,
        aiohttp.ClientSession() as session,
    ):
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await session.ws_connect(ws_url(stack), origin="https://evil.example.net")
        assert refused.value.status == 403
        async with session.ws_connect(ws_url(stack), origin="https://app.example.com") as ws:
            await ws.send_json({"type": "subscribe", "symbols": ["ETH"]})
            assert await next_json(ws) == {"kind": "SUBSCRIBED", "symbols": ["ETH"]}
