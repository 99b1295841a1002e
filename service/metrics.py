"""RPC metrics and the Prometheus exposition endpoint (Envoy routes ``GET /metrics`` here)."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

RPC_REQUESTS = Counter(
    "cryptosignals_rpc_requests_total", "RPCs handled, by method and gRPC status code.", ["method", "code"]
)
RPC_LATENCY = Histogram(
    "cryptosignals_rpc_latency_seconds",
    "RPC handling time, by method and gRPC status code (a fast error and a slow success differ).",
    ["method", "code"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)

CLIENT_RATE_LIMIT = Gauge(
    "cryptosignals_client_rate_limit",
    "Per-client rate limit of this server: each client's bucket size and refill per second (0: off).",
    ["quantity"],
)


class MetricsServer:
    """A small HTTP server on the serving event loop: no thread, no extra process."""

    def __init__(self) -> None:
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def start(self, host: str, port: int) -> None:
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        server = site._server  # aiohttp exposes the bound port only here
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
