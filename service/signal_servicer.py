"""SignalService: translates requests into domain calls and domain results into messages."""

from __future__ import annotations

import json
import time
from typing import Any, Protocol

import grpc
from cryptosignals.v1 import signal_pb2, signal_pb2_grpc
from google.api import httpbody_pb2

from providers.errors import ProviderError
from service import docs_pages
from service.coin_universe import CoinUniverse
from service.errors import abort_with, coin_or_abort
from service.signal_desk import SignalUnavailableError

VERSION = "1.0.0"


class SignalDesk(Protocol):
    """The domain behind SignalService (service/signal_desk.py)."""

    async def signal(self, symbol: str, debug: bool) -> signal_pb2.Signal: ...
    async def market(self, symbol: str) -> signal_pb2.MarketSnapshot: ...
    async def probe_premium(self, symbol: str) -> signal_pb2.PremiumProbeReport: ...
    def provider_health(self) -> list[signal_pb2.ProviderHealth]: ...


def endpoints_from_openapi(document: dict[str, Any]) -> list[signal_pb2.Endpoint]:
    """The endpoint list of GET /, taken from the generated OpenAPI document (itself from the protos)."""
    return [
        signal_pb2.Endpoint(method=verb.upper(), path=path, description=op.get("summary", ""))
        for path, operations in document["paths"].items()
        for verb, op in operations.items()
    ]


class SignalServicer(signal_pb2_grpc.SignalServiceServicer):
    def __init__(self, desk: SignalDesk, openapi_document: dict[str, Any], universe: CoinUniverse) -> None:
        self._desk = desk
        self._universe = universe
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
            providers=self._desk.provider_health(),
        )

    async def GetSignal(
        self, request: signal_pb2.GetSignalRequest, context: grpc.aio.ServicerContext
    ) -> signal_pb2.Signal:
        symbol = await self._symbol(request.symbol, context)
        try:
            return await self._desk.signal(symbol, request.debug)
        except SignalUnavailableError as exc:
            status = grpc.StatusCode.NOT_FOUND if exc.not_found else grpc.StatusCode.UNAVAILABLE
            await context.abort(status, str(exc))
            raise

    async def GetMarket(
        self, request: signal_pb2.GetMarketRequest, context: grpc.aio.ServicerContext
    ) -> signal_pb2.MarketSnapshot:
        symbol = await self._symbol(request.symbol, context)
        try:
            return await self._desk.market(symbol)
        except ProviderError as exc:
            await abort_with(context, exc)
            raise

    async def ProbePremiumEndpoints(
        self, request: signal_pb2.ProbePremiumEndpointsRequest, context: grpc.aio.ServicerContext
    ) -> signal_pb2.PremiumProbeReport:
        symbol = await self._symbol(request.symbol, context)
        return await self._desk.probe_premium(symbol)

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
        return httpbody_pb2.HttpBody(content_type="text/html; charset=utf-8", data=docs_pages.SWAGGER_UI.encode())

    async def GetRedocPage(
        self, request: signal_pb2.GetRedocPageRequest, context: grpc.aio.ServicerContext
    ) -> httpbody_pb2.HttpBody:
        return httpbody_pb2.HttpBody(content_type="text/html; charset=utf-8", data=docs_pages.REDOC.encode())
