"""RPC metrics and the Prometheus exposition endpoint (Envoy routes ``GET /metrics`` here).

With client keys (SIGNAL_API_KEYS) the endpoint needs one, as every keyed RPC does: Prometheus scrapes
the metrics port directly (``authorization: {credentials: <key>}`` in its scrape config), and Envoy
passes the REST caller's ``Authorization`` header through.
"""

from __future__ import annotations

import bisect
import itertools
import json
from collections.abc import Iterator, Sequence
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Gauge, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric

from service.rpc.auth import RATE_LIMITED_MESSAGE, AuthFailures, bearer_key

RPC_LATENCY_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class RpcTally:
    """Every RPC's status and handling time, in plain numbers, exposed at scrape time as
    ``cryptosignals_rpc_requests_total`` (by method and gRPC status code) and the histogram
    ``cryptosignals_rpc_latency_seconds`` (same labels: a fast error and a slow success differ).

    prometheus_client's own Counter and Histogram take a lock and check their state on every update;
    on the warm signal path that was a tenth of the server's time. Here one call is a bisect and
    three additions, on the serving loop's thread; the scrape (same loop) reads the totals.
    """

    def __init__(self) -> None:
        # (method, code) -> [count, sum of seconds, count per bucket (the last is +Inf)]
        self._rows: dict[tuple[str, str], list[Any]] = {}

    def row(self, method: str, code: str) -> list[Any]:
        """The running totals of (method, code): pass to ``add``."""
        row = self._rows.get((method, code))
        if row is None:
            row = self._rows[(method, code)] = [0, 0.0, [0] * (len(RPC_LATENCY_BUCKETS) + 1)]
        return row

    @staticmethod
    def add(row: list[Any], seconds: float) -> None:
        row[0] += 1
        row[1] += seconds
        row[2][bisect.bisect_left(RPC_LATENCY_BUCKETS, seconds)] += 1

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "cryptosignals_rpc_requests", "RPCs handled, by method and gRPC status code.", labels=["method", "code"]
        )
        latency = HistogramMetricFamily(
            "cryptosignals_rpc_latency_seconds",
            "RPC handling time, by method and gRPC status code (a fast error and a slow success differ).",
            labels=["method", "code"],
        )
        for (method, code), (count, total, buckets) in list(self._rows.items()):
            requests.add_metric([method, code], count)
            cumulative = list(itertools.accumulate(buckets))
            bounds = [*(str(b) for b in RPC_LATENCY_BUCKETS), "+Inf"]  # as prometheus_client writes them
            latency.add_metric([method, code], list(zip(bounds, cumulative, strict=True)), total)
        yield requests
        yield latency


RPC_TALLY = RpcTally()
REGISTRY.register(RPC_TALLY)

CLIENT_RATE_LIMIT = Gauge(
    "cryptosignals_client_rate_limit",
    "Per-client rate limit of this server: each client's bucket size and refill per second (0: off).",
    ["quantity"],
)


class MetricsServer:
    """A small HTTP server on the serving event loop: no thread, no extra process."""

    def __init__(self, keys: Sequence[str] = (), failures: AuthFailures | None = None) -> None:
        """``keys``: client keys (SIGNAL_API_KEYS), one of which a scrape must send; ``failures``: the
        RPCs' failure buckets, so a wrong key here costs the caller as it does there."""
        self._runner: web.AppRunner | None = None
        self._keys = [k.encode() for k in keys]
        self._failures = failures
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
        if self._keys:
            failures = self._failures
            client = ""
            if failures is not None:
                remote = request.remote or ""
                peer = f"ipv6:[{remote}]:0" if ":" in remote else f"ipv4:{remote}:0"
                forwarded = [("x-forwarded-for", v) for v in request.headers.getall("X-Forwarded-For", [])]
                client = failures.client(forwarded, peer)
                if failures.watching() and (refusal := failures.blocked(client)) is not None:
                    return _refused(429, 8, RATE_LIMITED_MESSAGE, dict(refusal.metadata()))
            refused = bearer_key(request.headers.get("Authorization", ""), self._keys)
            if refused is not None:
                if failures is not None and (refusal := failures.spend(client)) is not None:
                    return _refused(429, 8, RATE_LIMITED_MESSAGE, dict(refusal.metadata()))
                # The same JSON as every other 401 (Envoy's transcoded UNAUTHENTICATED).
                return _refused(401, 16, refused, {"WWW-Authenticate": "Bearer"})
        return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


def _refused(status: int, code: int, message: str, headers: dict[str, str]) -> web.Response:
    """An error in the shape of every other (``{"code": <gRPC code>, "message": ...}``)."""
    return web.Response(
        status=status,
        body=json.dumps({"code": code, "message": message}),
        headers={"Content-Type": "application/json", **headers},
    )
