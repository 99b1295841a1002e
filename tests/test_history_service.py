"""The history database never blocks a signal, loses nothing, and duplicates nothing.

Real parts: the grpc.aio server (in-process, or as a subprocess for SIGTERM), Envoy, the recorded
twin, and a real PostgreSQL server the tests start and stop.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import grpc
import httpx
import pytest
from cryptosignals.v1 import signal_pb2, signal_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from records.db import Database
from tests.postgres_server import PostgresServer
from tests.stack import free_port, running_stack, settings_env, stack_settings
from twin import RecordedTwin


async def _fresh(url: str) -> None:
    database = Database(url)
    await database.downgrade("base")
    await database.aclose()


async def test_signals_are_served_while_the_database_is_down_and_recorded_once_it_is_back(
    twin: RecordedTwin, postgres: PostgresServer
) -> None:
    await _fresh(postgres.url)
    async with running_stack(twin, database_url=postgres.url) as stack:
        archive = stack.server.app.archive
        assert archive is not None
        await archive.recorder.ready.wait()
        async with httpx.AsyncClient(base_url=stack.rest_url, timeout=15) as rest:
            postgres.stop()
            try:
                for coin in ("BTC", "ETH", "SOL"):
                    assert (await rest.get(f"/signals/{coin}")).status_code == 200  # never waits on the database
                with pytest.raises(TimeoutError):
                    await archive.recorder.flush(timeout=3)
                health = (await rest.get("/health")).json()["history"]
                assert health["available"] is False and health["detail"] and health["rowsWaiting"] == 3
                assert "secret-pg-pw" not in str(health)
            finally:
                postgres.start()
            await archive.recorder.flush(timeout=60)
            assert (await rest.get("/health")).json()["history"]["available"] is True
    database = Database(postgres.url)
    assert [await database.count(c) for c in ("BTC", "ETH", "SOL")] == [1, 1, 1]
    await database.aclose()


async def test_two_replicas_on_one_postgresql_write_each_interval_once(
    twin: RecordedTwin, postgres: PostgresServer
) -> None:
    await _fresh(postgres.url)
    async with (
        running_stack(twin, envoy=False, database_url=postgres.url) as first,
        running_stack(twin, envoy=False, database_url=postgres.url) as second,
    ):
        for stack in (first, second):
            async with grpc.aio.insecure_channel(stack.grpc_target) as channel:
                stub = signal_pb2_grpc.SignalServiceStub(channel)
                for coin in ("BTC", "ETH"):
                    await stub.GetSignal(signal_pb2.GetSignalRequest(symbol=coin))
        for stack in (first, second):
            assert stack.server.app.archive is not None
            await stack.server.app.archive.recorder.flush()
    database = Database(postgres.url)
    # Both replicas recorded BTC and ETH in the same 5-minute interval (or, at a boundary, two):
    # never a duplicate of one interval.
    for coin in ("BTC", "ETH"):
        rows = await database.page(coin, 0, 2**62, 10, None)
        assert 1 <= len(rows) <= 2 and len({r.bucket for r in rows}) == len(rows)
    await database.aclose()


async def test_an_unreachable_database_at_start_up_blocks_nothing(twin: RecordedTwin) -> None:
    url = f"postgresql+asyncpg://nobody:hidden-pw@127.0.0.1:{free_port()}/none"
    async with (
        running_stack(twin, database_url=url) as stack,
        httpx.AsyncClient(base_url=stack.rest_url, timeout=15) as rest,
    ):
        assert (await rest.get("/signals/BTC")).status_code == 200
        health = (await rest.get("/health")).json()["history"]
        assert health["available"] is False and health["detail"]
        assert "hidden-pw" not in health["detail"]
        history = await rest.get("/signals/BTC/history")
        assert history.status_code == 503 and "signal history is unavailable" in history.json()["message"]


async def test_sigterm_writes_every_buffered_row_before_exit(twin: RecordedTwin, tmp_path: Path) -> None:
    settings = stack_settings(twin, shutdown_drain_seconds=0, shutdown_grace_seconds=2, data_dir=str(tmp_path))
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        server = subprocess.Popen(  # noqa: ASYNC220 - returns at once
            [sys.executable, "-m", "service.rpc.server"],
            env={**os.environ, **settings_env(settings)},
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{settings.grpc_port}") as channel:
            health = health_pb2_grpc.HealthStub(channel)
            # Synchronise on the server's own readiness: its health check answering SERVING.
            await health.Check(health_pb2.HealthCheckRequest(), wait_for_ready=True, timeout=60)
            stub = signal_pb2_grpc.SignalServiceStub(channel)
            for coin in ("BTC", "ETH", "SOL"):
                await stub.GetSignal(signal_pb2.GetSignalRequest(symbol=coin), timeout=15)
        server.send_signal(signal.SIGTERM)  # rows are still in the buffer (flushed every second)
        code = await asyncio.to_thread(server.wait, 60)
    finally:
        if server.poll() is None:
            server.kill()
    assert code == 0, log.read_text()
    database = Database(settings.history_database_url)
    assert [await database.count(c) for c in ("BTC", "ETH", "SOL")] == [1, 1, 1], log.read_text()
    await database.aclose()


async def test_the_watchlist_is_recorded_without_anyone_asking(twin: RecordedTwin) -> None:
    async with running_stack(twin, envoy=False, watchlist="BTC,SOL") as stack:
        archive = stack.server.app.archive
        assert archive is not None
        await asyncio.wait_for(archive.recorder.watched.wait(), 60)
        await archive.recorder.flush()
        # One row per coin and profile served (seed, research): each profile keeps its own track record.
        assert await archive.database.count("BTC") == 2
        assert await archive.database.count("SOL") == 2
        assert await archive.database.count("ETH") == 0
        rows = await archive.database.page("BTC", 0, 10**13, 10, None)
        assert sorted(r.profile for r in rows) == ["research", "seed"]
