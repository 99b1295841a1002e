from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import httpx
import pytest
import redis

from records.db import Database
from tests.postgres_server import PostgresServer, postgres_server
from tests.redis_server import RedisServer, redis_server
from tests.stack import Stack, running_stack
from twin import RecordedTwin


@pytest.fixture(scope="session")
async def twin() -> AsyncIterator[RecordedTwin]:
    recorded = RecordedTwin()
    await recorded.start()
    yield recorded
    await recorded.stop()


@pytest.fixture
async def faults(twin: RecordedTwin) -> AsyncIterator[RecordedTwin]:
    """The twin, for a test that breaks it; every fault is cleared afterwards."""
    twin.clear_faults()
    yield twin
    twin.clear_faults()


@pytest.fixture(scope="session")
async def stack(twin: RecordedTwin) -> AsyncIterator[Stack]:
    """Twin + grpc.aio server + Envoy, with (fake) keys for every provider."""
    async with running_stack(twin) as running:
        yield running


@pytest.fixture(scope="session")
async def rest(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.rest_url, timeout=15.0) as client:
        yield client


@pytest.fixture(scope="session")
async def channel(stack: Stack) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(stack.grpc_target) as ch:
        yield ch


@pytest.fixture(scope="session")
def redis_session() -> Iterator[RedisServer]:
    """One real redis-server for the session (skipped, saying how to install it, if there is none)."""
    with redis_server() as server:
        yield server


@pytest.fixture
def redis_url(redis_session: RedisServer) -> str:
    """The session's Redis, emptied: every test starts with a cold shared cache and full budgets."""
    with redis.Redis.from_url(redis_session.url) as client:
        client.flushall()
    return redis_session.url


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One real PostgreSQL for the session (skipped, saying how to install it, if there is none);
    tests that stop it start it again, and each test starts from the schema it needs."""
    with postgres_server() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    if request.param == "sqlite":
        db = Database(f"sqlite+aiosqlite:///{tmp_path / 'history.db'}")
    else:
        server: PostgresServer = request.getfixturevalue("postgres")
        db = Database(server.url)
        await db.downgrade("base")  # a clean schema per test on the shared server
    yield db
    await db.aclose()
