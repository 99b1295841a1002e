"""The grpc.aio server: SignalService, CoinglassService, health checking and reflection.

``python -m service.rpc.server`` runs it until SIGINT/SIGTERM; then health turns NOT_SERVING first,
new calls are refused and in-flight calls get ``SHUTDOWN_GRACE_SECONDS`` to finish.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import socket
import sys
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

import grpc
import uvloop
from cryptosignals.v1 import (
    alerts_pb2,
    alerts_pb2_grpc,
    backtest_pb2,
    backtest_pb2_grpc,
    coinglass_pb2,
    coinglass_pb2_grpc,
    history_pb2,
    history_pb2_grpc,
    live_pb2,
    live_pb2_grpc,
    pages_pb2,
    pages_pb2_grpc,
    signal_pb2,
    signal_pb2_grpc,
)
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio
from grpc_reflection.v1alpha import reflection, reflection_pb2_grpc

from providers.redis_link import RedisLink
from service.app import App
from service.rpc.auth import AuthFailures, AuthInterceptor
from service.rpc.client_limit import ClientLimiter, SharedClientLimiter
from service.rpc.guard import Guard, GuardedServer
from service.rpc.logs import configure_logging
from service.rpc.metrics import CLIENT_RATE_LIMIT, MetricsServer
from service.rpc.page_tokens import PageTokens
from service.servicers.alerts import AlertServicer
from service.servicers.backtest import BacktestServicer
from service.servicers.coinglass import CoinglassServicer
from service.servicers.history import HistoryServicer
from service.servicers.live import LiveServicer
from service.servicers.pages import PageServicer
from service.servicers.signal import SignalServicer
from service.settings import Settings, load_settings
from service.web.live_socket import LiveSocketServer
from signals.market import MarketData

log = logging.getLogger("cryptosignals.server")


class StartupError(Exception):
    """The server cannot start; the message is one sentence naming the setting and the fix."""


MAX_METADATA_BYTES = 96 * 1024

SERVICE_NAMES = (
    signal_pb2.DESCRIPTOR.services_by_name["SignalService"].full_name,
    coinglass_pb2.DESCRIPTOR.services_by_name["CoinglassService"].full_name,
    backtest_pb2.DESCRIPTOR.services_by_name["BacktestService"].full_name,
    history_pb2.DESCRIPTOR.services_by_name["HistoryService"].full_name,
    live_pb2.DESCRIPTOR.services_by_name["LiveService"].full_name,
    alerts_pb2.DESCRIPTOR.services_by_name["AlertService"].full_name,
    pages_pb2.DESCRIPTOR.services_by_name["PageService"].full_name,
)


@dataclass
class RunningServer:
    server: grpc.aio.Server
    health: health_aio.HealthServicer
    port: int
    app: App
    metrics: MetricsServer
    live_socket: LiveSocketServer

    async def stop(self, grace: float, drain: float = 0.0) -> None:
        """Health NOT_SERVING first, then drain, then close clients.

        For ``drain`` seconds the server still answers new calls while reporting NOT_SERVING, so
        health-checking load balancers have time to stop sending; then new calls are refused and
        in-flight ones get ``grace`` seconds to finish.
        """
        await self.health.enter_graceful_shutdown()
        self.live_socket.draining = True  # its health check fails too: Envoy sends new sockets elsewhere
        if drain > 0:
            await asyncio.sleep(drain)
        # Streams never finish by themselves: end each with a final event so the grace period is
        # spent on unary calls, not waiting for watchers. WebSockets close with 1001 (going away).
        await self.live_socket.stop()
        for hub in self.app.hubs.values():
            await hub.aclose()
        await self.server.stop(grace)
        await self.metrics.stop()
        await self.app.aclose()


def stream_identity(settings: Settings) -> ClientLimiter:
    """Names stream watchers as the client rate limit names clients (its buckets are never used)."""
    return ClientLimiter(1, 1, settings.trusted_proxy_networks, keyed=bool(settings.client_api_keys))


def client_limiter(settings: Settings, redis: RedisLink | None = None) -> ClientLimiter | None:
    """Per client (key, else address): CLIENT_RATE_LIMIT_PER_SECOND 0 turns it off; with Redis
    (REDIS_URL) every replica spends from the same bucket per client."""
    rate = settings.client_rate_limit_per_second
    burst = max(settings.client_rate_limit_burst, rate)
    CLIENT_RATE_LIMIT.labels("per_second").set(rate)
    CLIENT_RATE_LIMIT.labels("burst").set(burst if rate > 0 else 0)
    if rate <= 0:
        return None
    if redis is not None:
        return SharedClientLimiter(
            redis, rate, burst, settings.trusted_proxy_networks, keyed=bool(settings.client_api_keys)
        )
    return ClientLimiter(rate, burst, settings.trusted_proxy_networks, keyed=bool(settings.client_api_keys))


def auth_failures(settings: Settings) -> ClientLimiter | None:
    """Each address's bucket of failed key checks (service/rpc/auth.py), sized as the client limit;
    None when the client limit is off."""
    rate = settings.client_rate_limit_per_second
    if rate <= 0:
        return None
    return ClientLimiter(rate, max(settings.client_rate_limit_burst, rate), settings.trusted_proxy_networks)


def _bindable(host: str, port: int) -> bool:
    """Whether a listener could bind ``host:port`` now (SO_REUSEADDR, as grpc binds)."""
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except OSError:
        return False
    family, kind, proto, _, where = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(where)
        except OSError:
            return False
    return True


async def start_server(settings: Settings, app: App | None = None) -> RunningServer:
    app = app or await App.create(settings)
    failures_limiter = auth_failures(settings)
    failures = AuthFailures(failures_limiter) if failures_limiter is not None else None
    server = grpc.aio.server(
        interceptors=[AuthInterceptor(settings.client_api_keys, failures)] if settings.client_api_keys else [],
        options=[
            ("grpc.so_reuseport", 0),
            ("grpc.max_receive_message_length", 1 << 20),
            # Envoy forwards up to its own header cap (max_request_headers_kb, 32 KB) and repeats a
            # REST URL in x-envoy-original-path: accept that much, so an overlong URL reaches the
            # servicer's validation (400) instead of gRPC's metadata limit (RESOURCE_EXHAUSTED, 429).
            ("grpc.max_metadata_size", MAX_METADATA_BYTES),
            ("grpc.absolute_max_metadata_size", MAX_METADATA_BYTES),
        ],
    )
    # Every handler is guarded as it is registered (service/rpc/guard.py): deadline, client limit, metrics.
    guard = Guard(settings.rpc_deadline_seconds, client_limiter(settings, app.redis), app.providers.limiter.shares)
    registry: Any = GuardedServer(server, guard)
    signal_pb2_grpc.add_SignalServiceServicer_to_server(
        SignalServicer(
            app.desk,
            app.clients,
            app.http,
            app.openapi_document,
            app.archive,
            operators=frozenset(settings.operator_api_keys) if settings.client_api_keys else None,
            market=MarketData(app.clients, settings.source_order.split(","), app.desk.universe),
            action_document=app.action_document,
        ),
        registry,
    )
    coinglass_pb2_grpc.add_CoinglassServiceServicer_to_server(
        CoinglassServicer(app.coinglass, settings.coinglass_exchange, settings.exchange_list, app.desk.universe),
        registry,
    )
    backtest_pb2_grpc.add_BacktestServiceServicer_to_server(
        BacktestServicer(app.backtester, app.desk.universe, stream_identity(settings)), registry
    )
    pages_pb2_grpc.add_PageServiceServicer_to_server(
        PageServicer(list(settings.watchlist_coins), app.backtester, app.desk.universe, stream_identity(settings)),
        registry,
    )
    live_pb2_grpc.add_LiveServiceServicer_to_server(
        LiveServicer(app.hubs, app.desk.universe, app.desk, stream_identity(settings)), registry
    )
    # PAGE_TOKEN_SECRET, else the random one kept in the history database (made on first use).
    secret = settings.page_token_secret
    tokens = PageTokens(secret.get_secret_value()) if secret is not None else None
    history_pb2_grpc.add_HistoryServiceServicer_to_server(
        HistoryServicer(app.archive, app.desk.universe, tokens), registry
    )
    alerts_pb2_grpc.add_AlertServiceServicer_to_server(
        AlertServicer(
            app.alerts,
            app.desk.universe,
            keyed=bool(settings.client_api_keys),
            max_per_client=settings.alert_max_per_client,
            max_coins_per_client=settings.alert_max_coins_per_client,
            max_coins=settings.alert_max_coins,
        ),
        registry,
    )
    health = health_aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, registry)
    # The asyncio servicer, named explicitly: enable_server_reflection() picks the threaded one for
    # anything that is not a grpc.aio.Server (GuardedServer is not), and each open reflection stream
    # would then hold a thread of the loop's default executor (DNS lookups, backtests, charts).
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(
        reflection.aio.ReflectionServicer(
            (*SERVICE_NAMES, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME)
        ),
        registry,
    )
    address = f"{settings.grpc_host}:{settings.grpc_port}"
    try:
        # Probed first: grpc's own failure is a C-level log line plus an exception.
        if settings.grpc_port and not _bindable(settings.grpc_host, settings.grpc_port):
            raise RuntimeError(address)
        port = server.add_insecure_port(address)
    except RuntimeError:
        port = 0
    if port == 0:
        await app.aclose()
        raise StartupError(
            f"cannot listen on {address} (GRPC_PORT={settings.grpc_port}, GRPC_HOST={settings.grpc_host}): "
            "the port is taken or the address is not this machine's; stop the other process or set GRPC_PORT "
            "to a free port"
        )
    await server.start()
    # Everything built so far (modules, descriptors, the app) lives as long as the process: moved out
    # of the collector's generations, so the collections that steady traffic triggers stay cheap.
    gc.collect()
    gc.freeze()
    for name in ("", *SERVICE_NAMES):
        await health.set(name, health_pb2.HealthCheckResponse.SERVING)
    metrics = MetricsServer(settings.client_api_keys, failures)
    try:
        await metrics.start(settings.metrics_host, settings.metrics_port)
    except OSError as exc:
        await server.stop(0)
        await app.aclose()
        raise StartupError(
            f"cannot listen on {settings.metrics_host}:{settings.metrics_port} for metrics "
            f"(METRICS_PORT={settings.metrics_port}, METRICS_HOST={settings.metrics_host}): "
            f"{exc.strerror or 'address unavailable'}; stop the other process or set METRICS_PORT to a free port"
        ) from None
    live_socket = LiveSocketServer(
        app.hub,
        app.desk.universe,
        app.scoring,
        stream_identity(settings),
        keys=settings.client_api_keys,
        allowed_origins=settings.cors_origin_list,
        max_sockets=settings.watch_max_streams,
        max_per_client=settings.watch_max_per_client,
    )
    try:
        await live_socket.start(settings.grpc_host, settings.ws_port)
    except OSError as exc:
        await metrics.stop()
        await server.stop(0)
        await app.aclose()
        raise StartupError(
            f"cannot listen on {settings.grpc_host}:{settings.ws_port} for WebSockets (WS_PORT={settings.ws_port}): "
            f"{exc.strerror or 'address unavailable'}; stop the other process or set WS_PORT to a free port"
        ) from None
    log.info(
        "grpc server listening on %s:%d, metrics on %s:%d, websockets on %s:%d",
        settings.grpc_host,
        port,
        settings.metrics_host,
        metrics.port,
        settings.grpc_host,
        live_socket.port,
    )
    return RunningServer(server, health, port, app, metrics, live_socket)


async def serve(settings: Settings) -> None:
    running = await start_server(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info(
        "shutting down: health NOT_SERVING, new calls refused after %.1f s, in-flight calls get %.1f s",
        settings.shutdown_drain_seconds,
        settings.shutdown_grace_seconds,
    )
    await running.stop(settings.shutdown_grace_seconds, drain=settings.shutdown_drain_seconds)
    log.info("stopped")


def run_loop(main: Coroutine[Any, Any, None], event_loop: str) -> None:
    """Run ``main`` to completion on EVENT_LOOP: uvloop (libuv) or the standard asyncio loop.

    grpc.aio runs on any asyncio loop. Measured on the warm signal path, uvloop's cheaper loop
    iterations raise throughput by a quarter (README, benchmarks).
    """
    if event_loop == "uvloop":
        uvloop.run(main)
    else:
        asyncio.run(main)


def main() -> None:
    settings = load_settings()  # a bad setting: SettingsError, one line naming it, exit code 1
    configure_logging(settings.log_level)
    try:
        run_loop(serve(settings), settings.event_loop)
    except StartupError as exc:
        print(f"cryptosignals: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
