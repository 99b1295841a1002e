"""GET /ws: live signals over one WebSocket for many coins, beside the SSE and gRPC streams.

Envoy's gRPC-JSON transcoder cannot carry WebSockets, so each server process serves this endpoint
itself (aiohttp, on WS_PORT) and Envoy routes ``/ws`` to it with the upgrade allowed. It shares the
live hub (signals/hub.py) with the SSE and gRPC streams: one refresh loop per coin whoever watches,
and each subscription is a hub watcher, so the per-client and per-server stream limits
(WATCH_MAX_PER_CLIENT, WATCH_MAX_STREAMS) count SSE streams, gRPC streams and WebSocket
subscriptions together.

Protocol (JSON text frames; the README's "WebSocket" section has examples):

- client -> server: ``{"type": "subscribe", "symbols": ["BTC", "ETH"], "min_score_change": 2}``,
  ``{"type": "unsubscribe", "symbols": ["ETH"]}`` (``"symbol": "BTC"`` works for one coin).
- server -> client: ``{"kind": "SUBSCRIBED"|"UNSUBSCRIBED", "symbols": [every coin now subscribed]}``;
  per coin the current signal at once, then one each time it changes enough, as the SSE stream's
  events (``{"kind": "SIGNAL", "symbol", "time", "signal": {...}, "message": ""}``);
  ``{"kind": "ERROR", "code", "message", "symbol"}`` for a request that cannot be served.
- Errors that leave the socket open: ``bad_request`` (a bad symbol or parameter), ``not_found``
  (unknown coin), ``limit`` (a stream limit: unsubscribe something first), ``unavailable`` (no
  data for the coin now). Errors that close it, after the ERROR message: ``malformed`` (not a JSON
  object, an unknown type) with close code 1008, ``too_big`` (over 4096 bytes) with 1009, a binary
  frame with 1003.
- Close codes: 1001 the server is shutting down (reconnect: another replica answers), 4008 slow
  consumer (its queue of ``QUEUE_SIZE`` messages filled: the events not yet sent are dropped, the
  close frame follows what was already written; a client that reads nothing at all for
  ``CLOSE_TIMEOUT`` seconds more is cut off), 1011 an internal error.
- Keepalive: a WebSocket ping every ``HEARTBEAT_SECONDS``; a client that does not answer within
  half of it is closed (browsers answer pings themselves).

Auth, when SIGNAL_API_KEYS is set: ``Authorization: Bearer <key>``, or, for browsers (which cannot
set headers on a WebSocket), the subprotocols ``cryptosignals.v1`` and ``bearer.<key>``
(``new WebSocket(url, ["cryptosignals.v1", "bearer." + key])``); the server answers with
``cryptosignals.v1``, never echoing the key. Refusals before the upgrade are plain HTTP with the
API's JSON error body: 401 (missing or invalid key), 403 (an Origin not in CORS_ALLOWED_ORIGINS),
429 (too many sockets), 400 (not a WebSocket upgrade), 503 (shutting down).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import WSMsgType, web
from cryptosignals.v1 import live_pb2
from google.protobuf import json_format

from scoring import ScoringConfig
from service.mappers.signal import signal_message, timestamp
from service.rpc.client_limit import ClientLimiter
from service.rpc.symbols import InvalidSymbolError, normalize_symbol
from signals.coin_universe import CoinUniverse
from signals.desk import LiveSignal
from signals.errors import SignalUnavailableError, WatchLimitError, unknown_coin_message
from signals.hub import SignalHub, Watcher, changed_enough

log = logging.getLogger("cryptosignals.websocket")

PROTOCOL = "cryptosignals.v1"
BEARER_PROTOCOL_PREFIX = "bearer."
MAX_MESSAGE_BYTES = 4096
MAX_SYMBOLS = 20  # per socket, as per stream (service/servicers/live.py)
QUEUE_SIZE = 64
HEARTBEAT_SECONDS = 15.0
CLOSE_TIMEOUT = 10.0
DEFAULT_MIN_SCORE_CHANGE = 2.0

CLOSE_GOING_AWAY = 1001
CLOSE_UNSUPPORTED = 1003
CLOSE_POLICY = 1008
CLOSE_TOO_BIG = 1009
CLOSE_INTERNAL = 1011
CLOSE_SLOW_CONSUMER = 4008


class _Malformed(Exception):
    """A client message the protocol does not allow: ERROR, then close 1008."""


@dataclass(frozen=True)
class _Close:
    code: int
    reason: str


@dataclass(eq=False)
class _Socket:
    ws: web.WebSocketResponse
    client: str
    transport: asyncio.Transport | None
    outbox: asyncio.Queue[str | _Close] = field(default_factory=lambda: asyncio.Queue(QUEUE_SIZE))
    subscriptions: dict[str, tuple[Watcher, asyncio.Task[None]]] = field(default_factory=dict)
    writer: asyncio.Task[None] | None = None
    closing: bool = False
    close_queued: bool = False  # an ERROR and its close are queued for the writer


def _error_body(code: int, message: str) -> str:
    return json.dumps({"code": code, "message": message})


def _refuse(status: int, grpc_code: int, message: str) -> web.Response:
    return web.Response(status=status, text=_error_body(grpc_code, message), content_type="application/json")


def _key_matches(presented: str, keys: Sequence[bytes]) -> bool:
    candidate = presented.encode()
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(candidate, key)
    return matched


class LiveSocketServer:
    def __init__(
        self,
        hub: SignalHub,
        universe: CoinUniverse,
        config: ScoringConfig,
        identity: ClientLimiter,
        *,
        keys: Sequence[str] = (),
        allowed_origins: Sequence[str] = ("*",),
        max_sockets: int = 2000,
        max_per_client: int = 20,
        queue_size: int = QUEUE_SIZE,
        heartbeat_seconds: float = HEARTBEAT_SECONDS,
        close_timeout: float = CLOSE_TIMEOUT,
    ) -> None:
        self._hub = hub
        self._universe = universe
        self._config = config
        self._identity = identity
        self._keys = [k.encode() for k in keys]
        self._origins = None if "*" in allowed_origins else frozenset(allowed_origins)
        self.max_sockets = max_sockets
        self.max_per_client = max_per_client
        self.queue_size = queue_size
        self.heartbeat_seconds = heartbeat_seconds
        self.close_timeout = close_timeout
        self.sockets: set[_Socket] = set()
        self.slow_consumers_closed = 0  # sockets closed with 4008 (tests and logs)
        self._rendered: dict[int, tuple[LiveSignal, dict[str, Any]]] = {}
        self._closing = False
        self.draining = False  # health answers 503 (Envoy sends new sockets elsewhere); sockets still served
        self._runner: web.AppRunner | None = None
        self.port = 0

    # ---- serving ---------------------------------------------------------------------------------

    async def start(self, host: str, port: int) -> int:
        app = web.Application()
        app.router.add_get("/ws", self.handle)
        app.router.add_get("/health", self.health)  # Envoy's health check of the ws_server cluster
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, host or None, port)
        try:
            await site.start()
        except OSError:
            await runner.cleanup()
            raise
        self._runner = runner
        server = site._server  # the bound port, when port 0 was asked
        sockets = getattr(server, "sockets", None) or ()
        self.port = sockets[0].getsockname()[1] if sockets else port
        return self.port

    async def stop(self, within: float = 1.0) -> None:
        """Close every socket with 1001 (going away), then stop listening. A client has ``within``
        seconds to answer the close (shutdown does not wait longer for it), then it is cut off."""
        self._closing = True
        reason = "the server is shutting down: reconnect"
        closes = [self._close(sock, CLOSE_GOING_AWAY, reason, within) for sock in self.sockets]
        await asyncio.gather(*closes, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def health(self, request: web.Request) -> web.Response:
        """200 while this server takes new sockets; 503 once it drains (after SIGTERM) or closes."""
        if self.draining or self._closing:
            return web.Response(status=503, text="draining")
        return web.Response(text="ok")

    def _client_of(self, request: web.Request, key: str | None) -> str:
        peer = request.transport.get_extra_info("peername") if request.transport is not None else None
        address = peer[0] if isinstance(peer, tuple) and peer else "unknown"
        grpc_peer = f"ipv6:[{address}]:0" if ":" in address else f"ipv4:{address}:0"
        metadata: list[tuple[str, str | bytes]] = [
            ("x-forwarded-for", value) for value in request.headers.getall("X-Forwarded-For", [])
        ]
        if key is not None:
            metadata.append(("authorization", f"Bearer {key}"))
        return self._identity.client_of(metadata, grpc_peer, keys_checked=True) or "anonymous"

    def _authorize(self, request: web.Request) -> tuple[str | None, web.Response | None]:
        """(the key the client presented, None) or (None, the refusal)."""
        if not self._keys:
            return None, None
        header = request.headers.get("Authorization", "")
        if header:
            scheme, _, token = header.partition(" ")
            token = token.strip() if scheme.lower() == "bearer" else ""
        else:
            offered = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",")]
            token = next(
                (p[len(BEARER_PROTOCOL_PREFIX) :] for p in offered if p.startswith(BEARER_PROTOCOL_PREFIX)), ""
            )
            if not token:
                return None, _refuse(
                    401,
                    16,
                    "missing API key: send the header 'Authorization: Bearer <key>', or from a browser the "
                    f"subprotocols '{PROTOCOL}' and '{BEARER_PROTOCOL_PREFIX}<key>'",
                )
        if not token or not _key_matches(token, self._keys):
            return None, _refuse(401, 16, "invalid API key")
        return token, None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        if self._origins is not None and origin is not None and origin not in self._origins:
            return _refuse(403, 7, f"origin {origin[:100]} is not allowed (CORS_ALLOWED_ORIGINS)")
        key, refusal = self._authorize(request)
        if refusal is not None:
            return refusal
        ws = web.WebSocketResponse(
            protocols=(PROTOCOL,),
            heartbeat=self.heartbeat_seconds,
            max_msg_size=64 * 1024,  # hard cap; the protocol's own limit (4096) is answered with an ERROR first
            compress=False,  # a frame is written whole, so a slow consumer's writer can be cancelled safely
            timeout=self.close_timeout,
        )
        if not ws.can_prepare(request).ok:
            return _refuse(400, 3, "GET /ws needs a WebSocket upgrade (Connection: Upgrade, Upgrade: websocket)")
        if self._closing:
            return _refuse(503, 14, "the server is shutting down: reconnect to another replica")
        client = self._client_of(request, key)
        if len(self.sockets) >= self.max_sockets:
            return _refuse(429, 8, f"this server already holds {self.max_sockets} sockets: try again later")
        if sum(1 for s in self.sockets if s.client == client) >= self.max_per_client:
            return _refuse(429, 8, f"at most {self.max_per_client} sockets per client: close one first")
        await ws.prepare(request)
        sock = _Socket(ws, client, request.transport, asyncio.Queue(self.queue_size))
        self.sockets.add(sock)
        sock.writer = asyncio.create_task(self._write(sock), name="ws-writer")
        try:
            await self._read(sock)
        except Exception:
            log.exception("websocket: reading a client's messages failed")
            await self._close(sock, CLOSE_INTERNAL, "internal error")
        finally:
            self._forget(sock)
            writer = sock.writer
            if writer is not None and not writer.done():
                if sock.close_queued:  # the writer sends the ERROR and the close, then stops
                    await asyncio.wait({writer}, timeout=self.close_timeout * 2)
                writer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await writer
            if not ws.closed:
                await self._close(sock, CLOSE_GOING_AWAY, "closing")
        return ws

    async def _read(self, sock: _Socket) -> None:
        async for message in sock.ws:
            if sock.closing:
                return
            if message.type is WSMsgType.BINARY:
                self._fail(
                    sock, "malformed", "binary frames are not part of the protocol: send JSON text", CLOSE_UNSUPPORTED
                )
                return
            if message.type is not WSMsgType.TEXT:
                return
            text: str = message.data
            if len(text.encode()) > MAX_MESSAGE_BYTES:
                self._fail(sock, "too_big", f"messages are at most {MAX_MESSAGE_BYTES} bytes", CLOSE_TOO_BIG)
                return
            try:
                self._on_message(sock, text)
            except _Malformed as exc:
                self._fail(sock, "malformed", str(exc), CLOSE_POLICY)
                return

    def _on_message(self, sock: _Socket, text: str) -> None:
        try:
            request = json.loads(text)
        except ValueError:
            raise _Malformed('not JSON: send {"type": "subscribe", "symbols": ["BTC"]}') from None
        if not isinstance(request, dict):
            raise _Malformed("a message is a JSON object with a type")
        kind = request.get("type")
        if kind not in ("subscribe", "unsubscribe"):
            raise _Malformed(f"unknown type {str(kind)[:40]!r}: subscribe or unsubscribe")
        raw = request.get("symbols", [request["symbol"]] if "symbol" in request else None)
        if not isinstance(raw, list) or not raw or not all(isinstance(s, str) for s in raw):
            raise _Malformed('symbols is a non-empty list of coin symbols, e.g. ["BTC", "ETH"]')
        if len(raw) > MAX_SYMBOLS:
            self._send(sock, self._error("bad_request", f"at most {MAX_SYMBOLS} symbols per message, got {len(raw)}"))
            return
        symbols: list[str] = []
        for spelling in raw:
            try:
                symbols.append(normalize_symbol(spelling))
            except InvalidSymbolError as exc:
                self._send(sock, self._error("bad_request", str(exc)))
        symbols = list(dict.fromkeys(symbols))
        if kind == "unsubscribe":
            for symbol in symbols:
                self._unsubscribe(sock, symbol)
            self._send(sock, json.dumps({"kind": "UNSUBSCRIBED", "symbols": sorted(sock.subscriptions)}))
            return
        min_change = request.get("min_score_change", DEFAULT_MIN_SCORE_CHANGE)
        if isinstance(min_change, bool) or not isinstance(min_change, int | float) or not 0 <= min_change <= 50:
            self._send(sock, self._error("bad_request", "min_score_change must be a number from 0 to 50"))
            return
        for symbol in symbols:
            if symbol in sock.subscriptions:
                continue
            if len(sock.subscriptions) >= MAX_SYMBOLS:
                self._send(sock, self._error("limit", f"at most {MAX_SYMBOLS} coins per socket", symbol))
                break
            if self._universe.refuses(symbol):
                self._send(sock, self._error("not_found", unknown_coin_message(symbol), symbol))
                continue
            try:
                watcher = self._hub.watch((symbol,), sock.client)
            except WatchLimitError as exc:
                self._send(sock, self._error("limit", str(exc), symbol))
                break
            pump = asyncio.create_task(self._pump(sock, symbol, watcher, float(min_change)), name=f"ws-{symbol}")
            sock.subscriptions[symbol] = (watcher, pump)
        self._send(sock, json.dumps({"kind": "SUBSCRIBED", "symbols": sorted(sock.subscriptions)}))

    def _unsubscribe(self, sock: _Socket, symbol: str, *, cancel: bool = True) -> None:
        entry = sock.subscriptions.pop(symbol, None)
        if entry is None:
            return
        watcher, pump = entry
        self._hub.leave(watcher)
        if cancel:
            pump.cancel()

    def _forget(self, sock: _Socket) -> None:
        self.sockets.discard(sock)
        for symbol in list(sock.subscriptions):
            self._unsubscribe(sock, symbol)

    # ---- events ----------------------------------------------------------------------------------

    @staticmethod
    def _error(code: str, message: str, symbol: str = "") -> str:
        return json.dumps({"kind": "ERROR", "code": code, "message": message, "symbol": symbol})

    def _signal_json(self, live: LiveSignal) -> str:
        """The SSE stream's event for ``live``: the same fields, names and formatting."""
        cached = self._rendered.get(id(live))
        if cached is None or cached[0] is not live:
            if len(self._rendered) >= 1024:
                self._rendered.clear()
            signal = json_format.MessageToDict(
                signal_message(live, config=self._config, debug=False), always_print_fields_with_no_presence=True
            )
            cached = (live, signal)
            self._rendered[id(live)] = cached
        event = live_pb2.SignalEvent(kind=live_pb2.SIGNAL, symbol=live.symbol, time=timestamp(datetime.now(UTC)))
        body = json_format.MessageToDict(event, always_print_fields_with_no_presence=True)
        body["signal"] = cached[1]
        return json.dumps(body)

    async def _pump(self, sock: _Socket, symbol: str, watcher: Watcher, min_change: float) -> None:
        try:
            try:
                last = self._hub.latest(symbol) or await self._hub.current(symbol)
            except SignalUnavailableError as exc:
                self._unsubscribe(sock, symbol, cancel=False)
                self._send(sock, self._error("not_found" if exc.not_found else "unavailable", str(exc), symbol))
                return
            self._send(sock, self._signal_json(last))
            while True:
                item = await watcher.queue.get()
                if item is None:  # the hub ended this watcher: shutdown, or it did not keep up
                    shutting_down = watcher.ended.startswith("the server is shutting down")
                    code = CLOSE_GOING_AWAY if shutting_down else CLOSE_SLOW_CONSUMER
                    self._close_soon(sock, code, watcher.ended)
                    return
                if changed_enough(last, item, min_change):
                    last = item
                    self._send(sock, self._signal_json(item))
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("websocket: streaming %s failed", symbol)
            self._close_soon(sock, CLOSE_INTERNAL, "internal error")

    # ---- writing and closing ---------------------------------------------------------------------

    def _send(self, sock: _Socket, text: str) -> None:
        if sock.closing:
            return
        try:
            sock.outbox.put_nowait(text)
        except asyncio.QueueFull:
            self.slow_consumers_closed += 1
            self._close_soon(sock, CLOSE_SLOW_CONSUMER, "slow consumer: the client did not keep up with its messages")

    def _fail(self, sock: _Socket, code: str, message: str, close_code: int) -> None:
        """An ERROR message, then the close (in that order: both go through the writer)."""
        self._send(sock, self._error(code, message))
        if sock.closing:
            return
        try:
            sock.outbox.put_nowait(_Close(close_code, message[:120]))
            sock.close_queued = True
        except asyncio.QueueFull:
            self._close_soon(sock, close_code, message[:120])
        sock.closing = True

    def _close_soon(self, sock: _Socket, code: int, reason: str) -> None:
        """Close now, past anything queued: the writer stops, the close frame follows what it wrote."""
        if sock.closing and not (code == CLOSE_SLOW_CONSUMER and sock.outbox.full()):
            return
        sock.closing = True
        if sock.writer is not None and sock.writer is not asyncio.current_task():
            sock.writer.cancel()
        task = asyncio.get_running_loop().create_task(self._close(sock, code, reason), name="ws-close")
        task.add_done_callback(lambda t: t.cancelled() or t.exception())

    async def _write(self, sock: _Socket) -> None:
        while True:
            item = await sock.outbox.get()
            if isinstance(item, _Close):
                await self._close(sock, item.code, item.reason)
                return
            try:
                await sock.ws.send_str(item)
            except (ConnectionError, RuntimeError):
                return  # the client went away; the reader sees it too

    async def _close(self, sock: _Socket, code: int, reason: str, within: float | None = None) -> None:
        """Send the close frame and wait for the client's, at most ``close_timeout``; then cut the
        connection (a client that reads nothing never receives the frame)."""
        sock.closing = True
        if sock.ws.closed:
            return
        try:
            close = sock.ws.close(code=code, message=reason[:120].encode())
            await asyncio.wait_for(close, self.close_timeout if within is None else within)
        except (TimeoutError, ConnectionError, RuntimeError):
            if sock.transport is not None:
                sock.transport.abort()
