"""PageService: the dashboard, the pages' scripts and stylesheets, and the backtest chart as a PNG.

Pages and assets are HttpBody answers; their headers (Content-Security-Policy, Cache-Control,
X-Content-Type-Options) travel as initial metadata, which Envoy's transcoder turns into HTTP headers.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator

import grpc
from cryptosignals.v1 import backtest_pb2, pages_pb2, pages_pb2_grpc
from google.api import httpbody_pb2

from service.mappers.backtest import backtest_period
from service.rpc.client_limit import ClientLimiter, caller_of
from service.web import pages
from service.web.pages import send_page_headers
from signals.backtest import BacktestReport
from signals.backtester import Backtester
from signals.coin_universe import CoinUniverse

CHUNK_BYTES = 256 * 1024
CHART_METHOD = "/cryptosignals.v1.PageService/GetBacktestChart"


def render_chart(report: BacktestReport, symbol: str, interval: str) -> bytes:
    # Imported on the first chart, not at start-up: matplotlib costs a server ~80 MB of memory that
    # a deployment nobody asks for charts should not pay.
    from service.reports.chart import write_chart

    buffer = io.BytesIO()
    write_chart(report, symbol, interval, buffer)
    return buffer.getvalue()


class PageServicer(pages_pb2_grpc.PageServiceServicer):
    def __init__(
        self, watchlist: list[str], backtester: Backtester, universe: CoinUniverse, identity: ClientLimiter
    ) -> None:
        # Four coins at most: each live card holds one stream, and a browser opens six connections
        # per host over HTTP/1.1; the rest are left for the page's other requests.
        self._page = pages.dashboard_page(watchlist[:4] or ["BTC"]).encode()
        self._backtester = backtester
        self._universe = universe
        self._identity = identity
        # pyplot keeps global state: one chart at a time, off the event loop.
        self._chart_lock = asyncio.Lock()

    async def GetDashboardPage(
        self, request: pages_pb2.GetDashboardPageRequest, context: grpc.aio.ServicerContext
    ) -> httpbody_pb2.HttpBody:
        await send_page_headers(context, pages.DASHBOARD_CSP, "no-cache")
        return httpbody_pb2.HttpBody(content_type=pages.HTML_TYPE, data=self._page)

    async def _asset(
        self, name: str, context: grpc.aio.ServicerContext, suffix: str
    ) -> AsyncIterator[httpbody_pb2.HttpBody]:
        found = pages.asset(name) if name.endswith(suffix) else None
        if found is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no such file: {name[:32]!r}")
            raise AssertionError("unreachable")
        await send_page_headers(context, None, found.cache_control)
        # Chunks well under the 1 MiB Envoy buffers per message while transcoding; the transcoder
        # writes each chunk's bytes as they come, with the first chunk's content type.
        for offset in range(0, len(found.data), CHUNK_BYTES):
            yield httpbody_pb2.HttpBody(content_type=found.content_type, data=found.data[offset : offset + CHUNK_BYTES])

    async def GetScript(
        self, request: pages_pb2.GetScriptRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[httpbody_pb2.HttpBody]:
        async for chunk in self._asset(request.name, context, ".js"):
            yield chunk

    async def GetStylesheet(
        self, request: pages_pb2.GetStylesheetRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[httpbody_pb2.HttpBody]:
        async for chunk in self._asset(request.name, context, ".css"):
            yield chunk

    async def GetBacktestChart(
        self, request: pages_pb2.GetBacktestChartRequest, context: grpc.aio.ServicerContext
    ) -> httpbody_pb2.HttpBody:
        backtest = backtest_pb2.RunBacktestRequest(
            symbol=request.symbol, interval=request.interval, start=request.start, end=request.end
        )
        if request.HasField("horizon_bars"):
            backtest.horizon_bars = request.horizon_bars
        symbol, period = await backtest_period(backtest, context, self._universe)
        report = await self._backtester.run(symbol, period, caller_of(context, self._identity, CHART_METHOD))
        async with self._chart_lock:
            png = await asyncio.to_thread(render_chart, report, symbol, period.interval)
        await send_page_headers(context, None, "no-cache")
        return httpbody_pb2.HttpBody(content_type="image/png", data=png)
