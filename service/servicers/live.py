"""LiveService: a coin's signal as a stream (gRPC server streaming; Server-Sent Events over REST)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from typing import Protocol

import grpc
from cryptosignals.v1 import live_pb2, live_pb2_grpc
from google.protobuf import timestamp_pb2

from scoring import ScoringConfig
from service.mappers.signal import signal_message, timestamp
from service.rpc.client_limit import ClientLimiter, caller_of
from service.rpc.status import abort_for
from service.rpc.symbols import InvalidSymbolError, normalize_symbol
from signals.coin_universe import CoinUniverse
from signals.desk import LiveSignal
from signals.errors import SignalUnavailableError, UnknownProfileError, WatchLimitError, unknown_coin_message
from signals.hub import SignalHub, changed_enough


class ProfileConfigs(Protocol):
    def config_of(self, profile: str | None) -> ScoringConfig: ...


DEFAULT_MIN_SCORE_CHANGE = 2.0
MAX_SYMBOLS = 20


def _now() -> timestamp_pb2.Timestamp:
    return timestamp(datetime.now(UTC))


WATCH_METHOD = "/cryptosignals.v1.LiveService/WatchSignals"


def client_of(context: grpc.aio.ServicerContext, identity: ClientLimiter) -> str:
    """Who is watching, named as the client rate limit names it."""
    return caller_of(context, identity, WATCH_METHOD)


class LiveServicer(live_pb2_grpc.LiveServiceServicer):
    def __init__(
        self,
        hubs: SignalHub | Mapping[str, SignalHub],
        universe: CoinUniverse,
        configs: ScoringConfig | ProfileConfigs,
        identity: ClientLimiter,
    ) -> None:
        """``hubs``: one per profile streamed (the first: the default's); ``configs``: each profile's config."""
        self._hubs = dict(hubs) if isinstance(hubs, Mapping) else {"": hubs}
        self._hub = next(iter(self._hubs.values()))
        self._identity = identity
        self._universe = universe
        self._configs = configs

    def _config_of(self, profile: str) -> ScoringConfig:
        configs = self._configs
        return configs if isinstance(configs, ScoringConfig) else configs.config_of(profile)

    def _event(self, live: LiveSignal) -> live_pb2.SignalEvent:
        return live_pb2.SignalEvent(
            kind=live_pb2.SIGNAL,
            symbol=live.symbol,
            time=_now(),
            signal=signal_message(live, config=self._config_of(live.profile), debug=False),
        )

    @staticmethod
    def _end(message: str, symbol: str = "") -> live_pb2.SignalEvent:
        return live_pb2.SignalEvent(kind=live_pb2.END, symbol=symbol, time=_now(), message=message)

    async def WatchSignals(
        self, request: live_pb2.WatchSignalsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[live_pb2.SignalEvent]:
        # Over REST (Envoy's transcoder), an error after the stream began cannot change the HTTP
        # status, and a client reading SSE expects events: refusals become a final END event there.
        rest = any(key == "x-envoy-original-path" for key, _ in (context.invocation_metadata() or ()))
        min_change = request.min_score_change if request.HasField("min_score_change") else DEFAULT_MIN_SCORE_CHANGE
        raw = [s for s in (request.symbol, *request.symbols) if s]
        try:
            if not 0 <= min_change <= 50:
                raise ValueError(f"min_score_change must be between 0 and 50, got {min_change:g}")
            if not raw:
                raise ValueError("symbol is required")
            symbols = tuple(dict.fromkeys(normalize_symbol(s) for s in raw))
            if len(symbols) > MAX_SYMBOLS:
                raise ValueError(f"at most {MAX_SYMBOLS} symbols per stream, got {len(symbols)}")
            hub = self._hub if not request.profile else self._hubs.get(request.profile)
            if hub is None:
                raise UnknownProfileError(request.profile[:32], tuple(name for name in self._hubs if name))
        except (ValueError, InvalidSymbolError) as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
            raise
        for symbol in symbols:
            if self._universe.refuses(symbol):
                if rest:
                    yield self._end(unknown_coin_message(symbol), symbol)
                    return
                await context.abort(grpc.StatusCode.NOT_FOUND, unknown_coin_message(symbol))
        try:
            watcher = hub.watch(symbols, client_of(context, self._identity))
        except WatchLimitError as exc:
            await abort_for(context, exc)
        try:
            last: dict[str, LiveSignal] = {}
            for symbol in symbols:  # the current signal first, at once
                try:
                    live = hub.latest(symbol) or await hub.current(symbol)
                except SignalUnavailableError as exc:  # the desk already remembered an unknown coin
                    if rest:
                        yield self._end(str(exc), symbol)
                        return
                    await abort_for(context, exc)
                last[symbol] = live
                yield self._event(live)
            loop = asyncio.get_running_loop()
            sent_at = loop.time()
            while True:
                # A heartbeat when nothing was SENT for a while: signals that changed too little to
                # send keep arriving from the hub, and must not keep the heartbeat away.
                wait = sent_at + hub.heartbeat_seconds - loop.time()
                try:
                    item = await asyncio.wait_for(watcher.queue.get(), max(0.0, wait))
                except TimeoutError:
                    sent_at = loop.time()
                    yield live_pb2.SignalEvent(
                        kind=live_pb2.HEARTBEAT, symbol=symbols[0] if len(symbols) == 1 else "", time=_now()
                    )
                    continue
                if item is None:
                    yield self._end(watcher.ended)
                    return
                previous = last.get(item.symbol)
                if previous is None or changed_enough(previous, item, min_change):
                    last[item.symbol] = item
                    sent_at = loop.time()
                    yield self._event(item)
        finally:
            hub.leave(watcher)
