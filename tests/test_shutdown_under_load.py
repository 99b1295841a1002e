"""Graceful shutdown under load: ``python -m service.rpc.server`` as a subprocess behind the test Envoy.

REST load runs through Envoy (every call is slow: the twin adds latency and caching is off, so
calls are in flight at the server), then SIGTERM. Health must turn NOT_SERVING while the server
still accepts calls; every call started before SIGTERM must end in a full 200; calls after may
get Envoy's 503, which must be our JSON error; the process exits 0 within drain + grace.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.stack import settings_env, stack_settings, start_envoy
from twin import RecordedTwin

DRAIN = 0.5
GRACE = 3.0
WORKERS = 12
PATHS = ("/coinglass/markets/BTC", "/signals/BTC")
NAMES = {health_pb2.HealthCheckResponse.SERVING: "SERVING", health_pb2.HealthCheckResponse.NOT_SERVING: "NOT_SERVING"}


@dataclass
class Call:
    path: str
    started: float
    ended: float = 0.0
    status: int = 0
    body: bytes = b""
    error: str = ""


async def _serving(port: int, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 20
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            assert server.poll() is None, f"the server exited while starting: see {log}"
            try:
                reply = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=0.5)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.aio.AioRpcError:
                pass
            await asyncio.sleep(0.1)
    pytest.fail("the server subprocess did not become SERVING")


async def _load(client: httpx.AsyncClient, calls: list[Call], stop: asyncio.Event, n: int) -> None:
    turn = n
    while not stop.is_set():
        call = Call(PATHS[turn % len(PATHS)], time.monotonic())
        turn += 1
        try:
            reply = await client.get(call.path)
            call.status, call.body = reply.status_code, reply.content
        except httpx.HTTPError as exc:
            call.error = repr(exc)
        call.ended = time.monotonic()
        calls.append(call)


async def _probe(port: int, probes: list[tuple[float, str]], stop: asyncio.Event) -> None:
    """A new health Check every 20 ms: what a load balancer sees (status, or the call refused)."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while not stop.is_set():
            try:
                reply = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=0.5)
                probes.append((time.monotonic(), NAMES.get(reply.status, str(reply.status))))
            except grpc.aio.AioRpcError as exc:
                probes.append((time.monotonic(), f"refused {exc.code().name}"))
            await asyncio.sleep(0.02)


@pytest.mark.timeout(60)
async def test_sigterm_mid_load_drains_in_flight_calls_and_exits_zero(faults: RecordedTwin, tmp_path: Path) -> None:
    settings = stack_settings(
        faults,
        cache_enabled=False,
        signal_cache_seconds=0,
        shutdown_grace_seconds=GRACE,
        shutdown_drain_seconds=DRAIN,
        log_level="WARNING",
    )
    faults.set_fault("coinglass", "*", "latency", latency_ms=300)  # every call spends >= 300 ms in the server
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        server = subprocess.Popen(  # noqa: ASYNC220 - returns at once
            [sys.executable, "-m", "service.rpc.server"],
            env={**os.environ, **settings_env(settings)},
            cwd=tmp_path,  # no .env there
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    envoy = None
    try:
        await _serving(settings.grpc_port, server, log)
        envoy = await start_envoy(settings)
        calls: list[Call] = []
        probes: list[tuple[float, str]] = []
        stop = asyncio.Event()
        limits = httpx.Limits(max_connections=WORKERS, max_keepalive_connections=WORKERS)
        async with httpx.AsyncClient(base_url=envoy.url, timeout=15, limits=limits) as client:
            tasks = [asyncio.ensure_future(_load(client, calls, stop, n)) for n in range(WORKERS)]
            tasks.append(asyncio.ensure_future(_probe(settings.grpc_port, probes, stop)))
            await asyncio.sleep(1.5)  # steady load: every worker has a call in flight
            sigterm_at = time.monotonic()
            server.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                await asyncio.to_thread(server.wait, DRAIN + GRACE + 5)
            exited_at = time.monotonic()
            await asyncio.sleep(0.5)  # a few calls against the stopped server: Envoy answers them
            stop.set()
            await asyncio.gather(*tasks)
    finally:
        if server.poll() is None:
            server.kill()
        if envoy is not None:
            envoy.stop()

    assert server.returncode == 0, log.read_text()[-2000:]
    assert exited_at - sigterm_at <= DRAIN + GRACE + 1.0, exited_at - sigterm_at

    # Health: SERVING before SIGTERM, NOT_SERVING after it while Checks are still answered, and only
    # then refused: a load balancer had DRAIN seconds to see NOT_SERVING.
    assert all(status == "SERVING" for at, status in probes if at < sigterm_at)
    after = [(at, status) for at, status in probes if at >= sigterm_at]
    first_refused = next(at for at, status in after if status.startswith("refused"))
    not_serving = [at for at, status in after if status == "NOT_SERVING"]
    assert not_serving and max(not_serving) < first_refused, after[:40]
    assert first_refused - sigterm_at >= DRAIN * 0.8

    # No transport error anywhere: Envoy stays up and answers for the stopped server.
    assert [c.error for c in calls if c.error] == []
    # Every call in flight at SIGTERM (indeed every call started before it) completed in full.
    before = [c for c in calls if c.started < sigterm_at]
    in_flight = [c for c in before if c.ended > sigterm_at]
    assert len(in_flight) >= WORKERS // 2, len(in_flight)
    for call in before:
        assert call.status == 200, (call.path, call.status, call.body[:200])
        assert json.loads(call.body)["symbol"] == "BTC"
    # Calls started later: served (during the drain), or a clean JSON 503 from Envoy.
    later = [c for c in calls if c.started >= sigterm_at]
    refused = [c for c in later if c.status != 200]
    assert refused, "no call reached Envoy after the server stopped"
    for call in refused:
        assert call.status == 503, (call.path, call.status, call.body[:200])
        body = json.loads(call.body)
        assert body["code"] == 14 and body["message"].startswith("service unavailable"), body
    for call in later:
        if call.status == 200:
            assert json.loads(call.body)["symbol"] == "BTC"
