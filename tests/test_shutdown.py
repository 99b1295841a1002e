"""Graceful shutdown: health turns NOT_SERVING first, in-flight calls finish within the grace period."""

from __future__ import annotations

import asyncio

import grpc
from cryptosignals.v1 import signal_pb2, signal_pb2_grpc
from grpc_health.v1 import health_pb2

from service.rpc.server import start_server
from tests.stack import stack_settings
from twin import RecordedTwin


async def test_stop_lets_in_flight_calls_finish_and_reports_not_serving(faults: RecordedTwin) -> None:
    settings = stack_settings(faults)
    running = await start_server(settings)
    faults.set_fault("okx", "*", "latency", latency_ms=800)  # the call is in flight during shutdown
    async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        signals = signal_pb2_grpc.SignalServiceStub(channel)
        in_flight = asyncio.ensure_future(signals.GetSignal(signal_pb2.GetSignalRequest(symbol="BTC"), timeout=10))
        await asyncio.sleep(0.3)
        stopping = asyncio.ensure_future(running.stop(grace=3.0))
        await asyncio.sleep(0.05)
        # Health is read from the servicer: new connections are already refused while draining.
        statuses = {
            name: (await running.health.Check(health_pb2.HealthCheckRequest(service=name), None)).status
            for name in ("", "cryptosignals.v1.SignalService")
        }
        signal = await in_flight
        await stopping
    assert statuses == dict.fromkeys(("", "cryptosignals.v1.SignalService"), health_pb2.HealthCheckResponse.NOT_SERVING)
    assert signal.symbol == "BTC" and signal.score > 0
