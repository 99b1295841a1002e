"""The real stack for integration tests: recorded twin, grpc.aio server and Envoy, all on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr

from providers.ratelimit import DEFAULT_PER_MINUTE
from service.edge.cache_headers import path_rules
from service.edge.envoy import GRPC_TLS_SECRET_NAME, envoy_binary, route_timeout_for, write_config, write_tls_sds
from service.rpc.server import RunningServer, start_server
from service.settings import Settings
from twin import RecordedTwin

FAKE_KEYS = {
    # Recognisable fake keys: tests assert they never appear in responses, errors or logs.
    "coinglass_api_key": "cg-SECRET-KEY-7f3a9",
    "coinapi_key": "coinapi-SECRET-KEY-51bd",
    "lunarcrush_api_key": "lunar-SECRET-KEY-c0de",
}


# Ports are drawn from 10000-19999, below the kernel's ephemeral range (32768-60999 on Linux), where
# outgoing connections take their source ports: a port asked of the kernel (bind to 0) came from that
# range, and under load a connection could take it between the moment it was chosen and the moment
# the server bound it ("address in use"). tests/launcher_process.py's two_free_ports() draws from
# 20000-30000, so the two never meet. Ports handed out once are not handed out again.
PORT_RANGE = (10000, 20000)
_handed_out: set[int] = set()


def free_port() -> int:
    for _ in range(1000):
        candidate = random.randrange(*PORT_RANGE)
        if candidate in _handed_out:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", candidate))
            except OSError:
                continue
        _handed_out.add(candidate)
        return candidate
    raise RuntimeError(f"no free port in {PORT_RANGE[0]}-{PORT_RANGE[1] - 1}")


def stack_settings(twin: RecordedTwin, *, keys: bool = True, **overrides: Any) -> Settings:
    urls = {name.lower(): url for name, url in twin.base_urls().items()}
    values: dict[str, Any] = {
        **urls,
        "grpc_host": "127.0.0.1",
        "grpc_port": free_port(),
        "port": free_port(),
        "envoy_admin_port": free_port(),
        "metrics_port": free_port(),
        "ws_port": free_port(),
        "upstream_timeout_seconds": 2.0,
        "rpc_deadline_seconds": 8.0,
        "shutdown_grace_seconds": 1.0,
        # Tests run far more cold calls per minute than production budgets allow; the limiter has
        # its own tests (test_rate_limit.py).
        "rate_limits": ",".join(f"{bucket}=0" for bucket in DEFAULT_PER_MINUTE),
        # Off unless a test turns it on: the suite sends bursts far above production client limits.
        "client_rate_limit_per_second": 0,
        **(FAKE_KEYS if keys else {}),
        # Each stack records its history in a database of its own, and computes no watchlist in the
        # background (tests that count upstream requests count only their own).
        "data_dir": tempfile.mkdtemp(prefix="cryptosignals-data-"),
        "watchlist": "",
        **overrides,
    }
    # _env_file=None: tests never read a developer's .env
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment variables that make ``python -m service.rpc.server`` load exactly ``settings``."""
    env: dict[str, str] = {}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        env[name.upper()] = str(value).lower() if isinstance(value, bool) else str(value)
    return env


@dataclass
class Envoy:
    process: subprocess.Popen[bytes]
    url: str
    log_path: Path

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()


async def start_envoy(settings: Settings, **render_overrides: Any) -> Envoy:
    """Envoy in front of the stack's server; HTTPS and the gRPC TLS listener when ``settings`` ask for
    them (TLS_CERT_FILE, GRPC_TLS_PORT), as the launcher does. ``render_overrides`` go to render_config."""
    workdir = Path(tempfile.mkdtemp(prefix="envoy-test-"))
    tls_sds = None
    if settings.tls_cert_file is not None and settings.tls_key_file is not None:
        tls_sds = write_tls_sds(workdir / "tls", settings.tls_cert_file, settings.tls_key_file)
    grpc_tls = None
    if settings.grpc_tls_port and settings.grpc_tls_files is not None:
        cert, key = settings.grpc_tls_files
        grpc_tls = (settings.grpc_tls_port, write_tls_sds(workdir / "grpc-tls", cert, key, GRPC_TLS_SECRET_NAME))
    rendering: dict[str, Any] = dict(
        port=settings.port,
        grpc_port=settings.grpc_port,
        admin_port=settings.envoy_admin_port,
        route_timeout_seconds=route_timeout_for(settings.rpc_deadline_seconds),
        metrics_port=settings.metrics_port,
        ws_port=settings.ws_port,
        upstreams=settings.grpc_upstream_list,
        client_rate_limit_per_second=settings.client_rate_limit_per_second,
        client_rate_limit_burst=settings.client_rate_limit_burst,
        cors_allowed_origins=settings.cors_origin_list,
        cache_rules=path_rules(settings),
        tls_sds=tls_sds,
        grpc_tls=grpc_tls,
        max_heap_mb=settings.envoy_max_heap_mb,
        max_connections=settings.envoy_max_connections,
    )
    config = write_config(workdir / "envoy.yaml", **{**rendering, **render_overrides})
    log_path = workdir / "envoy.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(  # noqa: ASYNC220 - started once per session, returns at once
            [envoy_binary(), "-c", str(config), "--log-level", "warn", "--base-id", str(settings.port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"{'https' if tls_sds is not None else 'http'}://127.0.0.1:{settings.port}"
    deadline = time.monotonic() + 20
    async with httpx.AsyncClient(timeout=1.0) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"envoy exited: {log_path.read_text()[-2000:]}")
            with contextlib.suppress(httpx.HTTPError):
                ready = await client.get(f"http://127.0.0.1:{settings.envoy_admin_port}/ready")
                if ready.status_code == 200:
                    return Envoy(process, url, log_path)
            await asyncio.sleep(0.1)
    process.kill()
    raise RuntimeError("envoy did not become ready")


@dataclass
class Stack:
    twin: RecordedTwin
    settings: Settings
    server: RunningServer
    envoy: Envoy | None

    @property
    def rest_url(self) -> str:
        assert self.envoy is not None
        return self.envoy.url

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.server.port}"


@contextlib.asynccontextmanager
async def running_stack(
    twin: RecordedTwin,
    *,
    envoy: bool = True,
    envoy_overrides: dict[str, Any] | None = None,
    **settings_overrides: Any,
) -> AsyncIterator[Stack]:
    settings = stack_settings(twin, **settings_overrides)
    server = await start_server(settings)
    proxy = await start_envoy(settings, **(envoy_overrides or {})) if envoy else None
    try:
        yield Stack(twin, settings, server, proxy)
    finally:
        if proxy is not None:
            proxy.stop()
        await server.stop(0.5)
