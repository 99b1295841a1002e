"""The history database on the embedded SQLite file and on a real PostgreSQL server.

Migrations up and down on both; one row per (symbol, interval) however many replicas record it;
rows survive a database outage in the recorder's buffer; retention prunes in batches.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from records.db import Database
from records.jobs.recorder import Recorder
from scoring import (
    DEFAULT_CONFIG,
    FundingInput,
    Missing,
    MomentumInput,
    Provenance,
    SignalInputs,
    score_signal,
)
from signals.desk import LiveSignal
from tests.postgres_server import PostgresServer

INTERVAL = 300


def live_signal(symbol: str, at: datetime, momentum: float = 2.0) -> LiveSignal:
    missing = Missing("not in this test")
    inputs = SignalInputs(
        liquidations=missing,
        funding_rate=FundingInput(0.01, Provenance("okx:/api/v5/public/funding-rate", at)),
        momentum=MomentumInput({"4h": momentum}, Provenance("okx:/api/v5/market/candles", at)),
        long_short_ratio=missing,
        smart_money=missing,
        open_interest=missing,
        social=missing,
        fear_greed=missing,
    )
    return LiveSignal(symbol, score_signal(inputs, DEFAULT_CONFIG), at, 100.0, 0.01, None, None, {}, frozenset())


async def test_migrations_upgrade_and_downgrade(database: Database) -> None:
    await database.migrate()
    assert (
        await database.current_revision() == "0005"
    )  # the head: 0005 (secrets), 0004 (profiles), 0003 (alerts hardened), 0002, 0001
    await database.insert([_row("BTC", 1)])
    assert await database.count() == 1
    await database.downgrade("base")
    assert await database.current_revision() is None
    await database.migrate()  # and up again, on an empty schema
    assert await database.count() == 0


async def test_one_row_per_symbol_and_interval_however_many_replicas_record_it(database: Database) -> None:
    await database.migrate()
    now = datetime(2026, 1, 1, 12, 0, 10, tzinfo=UTC)
    # Two replicas (two recorders, two engines) offer the same coins in the same intervals at once.
    second = Database(database.url)
    replicas = [
        Recorder(db, _never, watchlist=(), interval_seconds=INTERVAL, buffer_rows=100, config_hash="x")
        for db in (database, second)
    ]
    for recorder in replicas:
        await recorder.start()
        await recorder.ready.wait()
    for minute in range(0, 30, 1):  # 30 minutes: 6 intervals of 5 minutes
        for recorder in replicas:
            for coin in ("BTC", "ETH"):
                recorder.offer(live_signal(coin, now + timedelta(minutes=minute, seconds=len(coin))))
    await asyncio.gather(*(r.flush() for r in replicas))
    assert await database.count("BTC") == 6
    assert await database.count("ETH") == 6
    rows = await database.page("BTC", 0, 2**62, 100, None)
    assert len({r.bucket for r in rows}) == 6
    for recorder in replicas:
        await recorder.aclose()


async def test_rows_wait_while_the_database_is_down_and_none_is_lost(postgres: PostgresServer) -> None:
    database = Database(postgres.url)
    await database.downgrade("base")
    recorder = Recorder(database, _never, watchlist=(), interval_seconds=INTERVAL, buffer_rows=1000, config_hash="x")
    await recorder.start()
    await recorder.ready.wait()
    start = datetime(2026, 1, 1, tzinfo=UTC)
    recorder.offer(live_signal("BTC", start))
    await recorder.flush()
    postgres.stop()
    try:
        for i in range(1, 6):
            recorder.offer(live_signal("BTC", start + timedelta(seconds=INTERVAL * i)))
        with pytest.raises(TimeoutError):
            await recorder.flush(timeout=3)  # the database is down: rows stay buffered
        assert recorder.waiting == 5
        assert recorder.unavailable_reason  # and health can say why
    finally:
        postgres.start()
    await recorder.flush(timeout=60)  # written once the database is back, retried by the recorder
    assert await database.count("BTC") == 6
    assert recorder.unavailable_reason == ""
    await recorder.aclose()


async def test_a_full_buffer_drops_new_rows_and_counts_them(tmp_path: Path) -> None:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'h.db'}")
    recorder = Recorder(database, _never, watchlist=(), interval_seconds=INTERVAL, buffer_rows=100, config_hash="x")
    # Not started: nothing drains the buffer.
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for i in range(150):
        recorder.offer(live_signal("BTC", start + timedelta(seconds=INTERVAL * i)))
    assert recorder.waiting == 100
    await database.aclose()


async def test_retention_prunes_old_rows_in_batches(database: Database) -> None:
    await database.migrate()
    await database.insert([_row("BTC", i) for i in range(120)])
    removed = await database.prune(before_ms=100 * INTERVAL * 1000, batch=7)
    assert removed == 100
    assert await database.count() == 20


def _row(symbol: str, bucket: int) -> dict[str, object]:
    return {
        "symbol": symbol,
        "bucket": bucket,
        "computed_ms": bucket * INTERVAL * 1000,
        "score": 50.0,
        "signal": "NEUTRAL",
        "confidence": "low",
        "coverage": 0.5,
        "price": 100.0,
        "factors": [],
        "config_hash": "x",
    }


async def _never(symbol: str) -> LiveSignal:
    raise AssertionError("no watchlist in these tests")


async def test_migration_0004_names_the_profile_and_keeps_one_row_per_profile(database: Database) -> None:
    """Rows recorded before profiles existed are the seed's; afterwards each profile has its own row
    per coin and interval, and its own outcomes (the track record is per profile)."""
    from sqlalchemy import text

    await database.migrate("0003")
    async with database.engine.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO signal_history (symbol, bucket, computed_ms, score, signal, confidence, coverage,"
                " price, factors, config_hash) VALUES ('BTC', 1, 300000, 60.0, 'LONG', 'low', 0.5, 100.0, '[]', 'x')"
            )
        )
    await database.migrate("0004")
    assert await database.current_revision() == "0004"
    (old,) = await database.page("BTC", 0, 10**13, 10, None)
    assert old.profile == "seed"
    research = {**_row("BTC", 1), "profile": "research", "signal": "SHORT"}
    await database.insert([research, {**_row("BTC", 1), "profile": "research"}])  # the second: ignored
    assert await database.count("BTC") == 2
    rows = await database.page("BTC", 0, 10**13, 10, None)
    await database.set_return("24h", [(r.id, 1.5) for r in rows])
    seed_outcomes = await database.outcomes("BTC", "24h", 0)
    research_outcomes = await database.outcomes("BTC", "24h", 0, "research")
    assert [o.signal for o in seed_outcomes] == ["LONG"]
    assert [o.signal for o in research_outcomes] == ["SHORT"]
    await database.downgrade("0003")  # the research rows go; the seed's stay
    await database.migrate()
    assert await database.count("BTC") == 1


async def test_the_recorder_keeps_each_profiles_signal(database: Database) -> None:
    import dataclasses

    await database.migrate()
    recorder = Recorder(
        database,
        _never,
        watchlist=(),
        interval_seconds=INTERVAL,
        buffer_rows=100,
        config_hash="s",
        profile_hashes={"seed": "s", "research": "r"},
    )
    await recorder.start()
    await recorder.ready.wait()
    at = datetime(2026, 1, 1, 12, 0, 10, tzinfo=UTC)
    seed = live_signal("BTC", at)
    recorder.offer(seed)
    recorder.offer(dataclasses.replace(seed, profile="research"))
    recorder.offer(dataclasses.replace(seed, profile="research"))  # the same interval: once
    await recorder.flush()
    rows = await database.page("BTC", 0, 10**13, 10, None)
    assert sorted((r.profile, r.config_hash) for r in rows) == [("research", "r"), ("seed", "s")]
    await recorder.aclose()
