"""SignalService: translates requests into domain calls and domain results into messages."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any

import grpc
from cryptosignals.v1 import signal_pb2, signal_pb2_grpc
from google.api import httpbody_pb2

from providers.clients import Clients
from providers.http import ProviderHttp
from records.archive import SignalArchive
from service.mappers.market import build_market_snapshot, probe_premium_endpoints, provider_health
from service.mappers.signal import signal_message, timeframe_messages
from service.mappers.structure import correlation_message, structure_message
from service.rpc.guard import answers_ready
from service.rpc.status import abort_for, coin_or_abort
from service.rpc.symbols import InvalidSymbolError, normalize_symbol
from service.web import docs as docs_pages
from service.web.pages import DOCS_CSP, send_page_headers
from signals.desk import LiveSignal, SignalDesk
from signals.errors import MarketQueryError, unknown_coin_message
from signals.market import MAX_SYMBOLS, MarketData, aligned, interval_of

VERSION = "1.0.0"


def endpoints_from_openapi(document: dict[str, Any]) -> list[signal_pb2.Endpoint]:
    """The endpoint list of GET /, taken from the generated OpenAPI document (itself from the protos)."""
    return [
        signal_pb2.Endpoint(method=verb.upper(), path=path, description=op.get("summary", ""))
        for path, operations in document["paths"].items()
        for verb, op in operations.items()
    ]


def bearer_key(context: grpc.aio.ServicerContext) -> str | None:
    """The client key of the call (the auth interceptor has accepted it already), or None."""
    for name, value in context.invocation_metadata() or ():
        if name == "authorization" and isinstance(value, str):
            scheme, _, key = value.partition(" ")
            return key.strip() if scheme.lower() == "bearer" else None
    return None


class SignalServicer(signal_pb2_grpc.SignalServiceServicer):
    def __init__(
        self,
        desk: SignalDesk,
        clients: Clients,
        http_by_provider: Mapping[str, ProviderHttp | None],
        openapi_document: dict[str, Any],
        archive: SignalArchive | None = None,
        operators: frozenset[str] | None = None,
        market: MarketData | None = None,
        action_document: dict[str, Any] | None = None,
    ) -> None:
        self._desk = desk
        # With client keys on: the keys that may call operator endpoints (None: keys are off).
        self._operators = operators
        self._market = market or MarketData(clients, universe=desk.universe)
        self._archive = archive
        self._universe = desk.universe
        self._clients = clients
        self._http = http_by_provider
        self._configured = {name: layer is not None for name, layer in http_by_provider.items()}
        # The message last rendered per (symbol, debug) and the signal it came from: while the desk
        # hands out the same memoised signal, its message is reused instead of rebuilt.
        # (symbol as asked, debug) -> (coin, the signal, its message, the desk's fresh reader of
        # that coin): the warm path's answer, and how it learns whether it still is.
        # The profile as asked ("" = the default) is part of the key.
        self._rendered: dict[
            tuple[str, bool, str], tuple[str, LiveSignal, signal_pb2.Signal, Callable[[], LiveSignal | None]]
        ] = {}
        self._openapi = json.dumps(openapi_document, indent=2).encode()
        # GPT Actions' schema: the operations an assistant can call (pages, streams, operator endpoints left out).
        self._action_schema = (
            self._openapi if action_document is None else json.dumps(action_document, indent=2).encode()
        )
        self._info = signal_pb2.ApiInfo(
            name="cryptosignals",
            version=VERSION,
            description=openapi_document["info"]["description"],
            endpoints=endpoints_from_openapi(openapi_document),
        )
        self._started = time.monotonic()

    async def _symbol(self, raw: str, context: grpc.aio.ServicerContext) -> str:
        return await coin_or_abort(raw, context, self._universe)

    async def GetApiInfo(
        self, request: signal_pb2.GetApiInfoRequest, context: grpc.aio.ServicerContext
    ) -> signal_pb2.ApiInfo:
        return self._info

    async def GetHealth(
        self, request: signal_pb2.GetHealthRequest, context: grpc.aio.ServicerContext
    ) -> signal_pb2.HealthReport:
        return signal_pb2.HealthReport(
            status="SERVING",
            version=VERSION,
            uptime_seconds=round(time.monotonic() - self._started, 3),
            providers=provider_health(self._http, self._configured),
            history=self._history_health(),
        )

    def _history_health(self) -> signal_pb2.HistoryHealth:
        archive = self._archive
        if archive is None:
            return signal_pb2.HistoryHealth(available=False, detail="off (HISTORY_ENABLED=false)")
        return signal_pb2.HistoryHealth(
            available=archive.available,
            detail=archive.unavailable_reason,
            rows_waiting=archive.recorder.waiting,
        )

    def _ready_signal(self, request: signal_pb2.GetSignalRequest) -> signal_pb2.Signal | None:
        """GetSignal's answer when it needs no await (the guard asks this first: ``answers_ready``):
        a spelling answered before, whose coin's memoised signal is fresh. The same signal as last
        time: the same message (no validation, no rendering; it was offered to the history then).
        A newer one: rendered now. None: GetSignal validates the coin and awaits its signal."""
        if request.debug:
            return None  # a debug signal adds the 1h/4h/1d structure, which awaits its candles
        key = (request.symbol, request.debug, request.profile)
        hot = self._rendered.get(key)
        if hot is None:
            return None
        fresh = hot[3]()
        if fresh is hot[1]:
            return hot[2]
        if fresh is None:
            return None
        return self._render(key, hot[0], fresh)

    def _render(self, key: tuple[str, bool, str], symbol: str, live: LiveSignal) -> signal_pb2.Signal:
        if self._archive is not None:
            self._archive.offer(live)  # buffered, never waits; at most once per interval and coin
        hot = self._rendered.get(key)
        if hot is not None and hot[1] is live:
            return hot[2]
        message = signal_message(live, config=self._desk.config_of(live.profile), debug=key[1])
        if len(self._rendered) >= 4096:  # bounded: requests may spell coins many ways
            self._rendered.clear()
            hot = None
        reader = hot[3] if hot is not None else self._desk.fresh_reader(symbol, key[2])
        self._rendered[key] = (symbol, live, message, reader)
        return message

    @answers_ready(_ready_signal)
    async def GetSignal(
        self, request: signal_pb2.GetSignalRequest, context: grpc.aio.ServicerContext
    ) -> signal_pb2.Signal:
        ready = self._ready_signal(request)  # None when the guard asked already
        if ready is not None:
            return ready
        symbol = await self._symbol(request.symbol, context)
        # SignalUnavailableError, UnknownProfileError: the guard answers them (rpc/status.py)
        live = await self._desk.signal(symbol, request.profile)
        message = self._render((request.symbol, request.debug, request.profile), symbol, live)
        if not request.debug:
            return message
        # Debug: the structure on 1h, 4h and 1d beside the signal (cached candles; an interval that
        # fails says why in its view, never fails the signal).
        views = await self._market.timeframes(symbol)
        answer = signal_pb2.Signal()
        answer.CopyFrom(message)
        answer.timeframes.extend(timeframe_messages(views))
        answer.timeframes_aligned = aligned(views)
        return answer

    async def GetMarket(
        self, request: signal_pb2.GetMarketRequest, context: grpc.aio.ServicerContext
    ) -> signal_pb2.MarketSnapshot:
        symbol = await self._symbol(request.symbol, context)
        return await build_market_snapshot(self._clients, symbol, self._configured)

    async def ProbePremiumEndpoints(
        self, request: signal_pb2.ProbePremiumEndpointsRequest, context: grpc.aio.ServicerContext
    ) -> signal_pb2.PremiumProbeReport:
        if self._operators is not None and bearer_key(context) not in self._operators:
            await context.abort(
                grpc.StatusCode.PERMISSION_DENIED,
                "the premium probe spends the paid Coinglass budget: it is reserved to the keys OPERATOR_KEYS names",
            )
        symbol = await self._symbol(request.symbol, context)
        return await probe_premium_endpoints(self._http.get("coinglass"), symbol, self._clients.reference_exchange)

    async def GetActionSchema(
        self, request: signal_pb2.GetActionSchemaRequest, context: grpc.aio.ServicerContext
    ) -> httpbody_pb2.HttpBody:
        return httpbody_pb2.HttpBody(content_type="application/json", data=self._action_schema)

    async def GetOpenApiDocument(
        self, request: signal_pb2.GetOpenApiDocumentRequest, context: grpc.aio.ServicerContext
    ) -> httpbody_pb2.HttpBody:
        return httpbody_pb2.HttpBody(content_type="application/json", data=self._openapi)

    async def GetSwaggerUiPage(
        self, request: signal_pb2.GetSwaggerUiPageRequest, context: grpc.aio.ServicerContext
    ) -> httpbody_pb2.HttpBody:
        await send_page_headers(context, DOCS_CSP, "no-cache")
        return httpbody_pb2.HttpBody(content_type="text/html; charset=utf-8", data=docs_pages.SWAGGER_UI.encode())

    async def GetRedocPage(
        self, request: signal_pb2.GetRedocPageRequest, context: grpc.aio.ServicerContext
    ) -> httpbody_pb2.HttpBody:
        await send_page_headers(context, DOCS_CSP, "no-cache")
        return httpbody_pb2.HttpBody(content_type="text/html; charset=utf-8", data=docs_pages.REDOC.encode())

    async def GetMarketStructure(
        self, request: signal_pb2.GetMarketStructureRequest, context: grpc.aio.ServicerContext
    ) -> signal_pb2.MarketStructure:
        symbol = await self._symbol(request.symbol, context)
        report = await self._market.structure(
            symbol,
            interval_of(request.interval or "4h"),
            bars=request.bars if request.HasField("bars") else 200,
            swing_bars=request.swing_bars if request.HasField("swing_bars") else 3,
            equal_tolerance_pct=request.equal_tolerance_pct if request.HasField("equal_tolerance_pct") else 0.1,
        )
        return structure_message(report)

    async def GetCorrelation(
        self, request: signal_pb2.GetCorrelationRequest, context: grpc.aio.ServicerContext
    ) -> signal_pb2.CorrelationReport:
        raw = [part.strip() for part in request.symbols.split(",") if part.strip()]
        if not raw:
            raise MarketQueryError("symbols is required: 2 to 10 coins, comma-separated, e.g. BTC,ETH,SOL")
        if len(raw) > MAX_SYMBOLS:
            raise MarketQueryError(f"symbols must name 2 to {MAX_SYMBOLS} coins, got {len(raw)}")
        try:
            coins = [normalize_symbol(part) for part in raw]
        except InvalidSymbolError as exc:
            await abort_for(context, exc)
        for coin in coins:
            if self._universe.refuses(coin):
                await context.abort(grpc.StatusCode.NOT_FOUND, unknown_coin_message(coin))
        interval = interval_of(request.interval or "1d")
        window = request.window if request.HasField("window") else 30
        return correlation_message(await self._market.correlation(coins, interval, window))
