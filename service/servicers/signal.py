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
from service.mappers.signal import signal_message
from service.rpc.guard import answers_ready
from service.rpc.status import coin_or_abort
from service.web import docs as docs_pages
from service.web.pages import DOCS_CSP, send_page_headers
from signals.desk import LiveSignal, SignalDesk

VERSION = "1.0.0"


def endpoints_from_openapi(document: dict[str, Any]) -> list[signal_pb2.Endpoint]:
    """The endpoint list of GET /, taken from the generated OpenAPI document (itself from the protos)."""
    return [
        signal_pb2.Endpoint(method=verb.upper(), path=path, description=op.get("summary", ""))
        for path, operations in document["paths"].items()
        for verb, op in operations.items()
    ]


class SignalServicer(signal_pb2_grpc.SignalServiceServicer):
    def __init__(
        self,
        desk: SignalDesk,
        clients: Clients,
        http_by_provider: Mapping[str, ProviderHttp | None],
        openapi_document: dict[str, Any],
        archive: SignalArchive | None = None,
    ) -> None:
        self._desk = desk
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
        return self._render((request.symbol, request.debug, request.profile), symbol, live)

    async def GetMarket(
        self, request: signal_pb2.GetMarketRequest, context: grpc.aio.ServicerContext
    ) -> signal_pb2.MarketSnapshot:
        symbol = await self._symbol(request.symbol, context)
        return await build_market_snapshot(self._clients, symbol, self._configured)

    async def ProbePremiumEndpoints(
        self, request: signal_pb2.ProbePremiumEndpointsRequest, context: grpc.aio.ServicerContext
    ) -> signal_pb2.PremiumProbeReport:
        symbol = await self._symbol(request.symbol, context)
        return await probe_premium_endpoints(self._http.get("coinglass"), symbol, self._clients.reference_exchange)

    async def GetActionSchema(
        self, request: signal_pb2.GetActionSchemaRequest, context: grpc.aio.ServicerContext
    ) -> httpbody_pb2.HttpBody:
        return httpbody_pb2.HttpBody(content_type="application/json", data=self._openapi)

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
