"""Alerts in the history database, on SQLite and on a real PostgreSQL: migration 0002 up and down,
one delivery per transition however many replicas observe it, and the outbox claimed by one
replica at a time (PostgreSQL ``FOR UPDATE SKIP LOCKED``)."""

from __future__ import annotations

import asyncio

from sqlalchemy import inspect

from records.alerts import DOES_NOT_HOLD, FAILED, PENDING, SENT, UNKNOWN, Alert, AlertStore, holds
from records.db import Database
from tests.postgres_server import PostgresServer

ALERT_TABLES = {"alerts", "alert_states", "alert_deliveries"}


async def _tables(database: Database) -> set[str]:
    async with database.engine.connect() as connection:
        return set(await connection.run_sync(lambda sync: inspect(sync).get_table_names()))


def _alert(alert_id: str = "a1", owner: str = "key:one", symbols: tuple[str, ...] = ("BTC",)) -> Alert:
    return Alert(alert_id, owner, symbols, "score_above", 60.0, "https://example.com/hook", 1_000)


async def test_migration_0002_upgrades_and_downgrades(database: Database) -> None:
    await database.migrate("0001")
    assert await database.current_revision() == "0001"
    assert not ALERT_TABLES & await _tables(database)
    await database.migrate()
    assert await database.current_revision() == "0002"
    assert await _tables(database) >= ALERT_TABLES
    store = AlertStore(database)
    assert await store.create(_alert(), "s", {"BTC": DOES_NOT_HOLD}, 5)
    await database.downgrade("0001")
    assert await database.current_revision() == "0001"
    assert not ALERT_TABLES & await _tables(database)
    assert "signal_history" in await _tables(database)
    await database.migrate()  # and up again, empty
    assert await AlertStore(database).all() == []


async def test_a_transition_fires_once_however_many_replicas_observe_it(database: Database) -> None:
    await database.migrate()
    replicas = [AlertStore(database), AlertStore(Database(database.url))]
    assert await replicas[0].create(_alert(), "s", {"BTC": DOES_NOT_HOLD}, 5)

    async def observe(store: AlertStore, now_holds: bool) -> bool:
        return await store.observe("a1", "BTC", now_holds, lambda key: f'{{"id":"{key}"}}', 2_000)

    # Both replicas see the score cross above at once, several times each: one delivery.
    fired = await asyncio.gather(*(observe(store, True) for store in replicas for _ in range(4)))
    assert sum(fired) == 1
    assert len(await replicas[0].deliveries("a1")) == 1
    # Still above: nothing more. Back below, then above again: a second transition, a second delivery.
    assert not await observe(replicas[1], True)
    assert not await observe(replicas[0], False)
    assert await observe(replicas[1], True)
    rows = await replicas[0].deliveries("a1")
    assert [r.status for r in rows] == [PENDING, PENDING]
    assert len({r.idempotency_key for r in rows}) == 2
    await replicas[1].database.aclose()


async def test_an_unknown_state_becomes_known_without_firing(database: Database) -> None:
    await database.migrate()
    store = AlertStore(database)
    assert await store.create(_alert(), "s", {"BTC": UNKNOWN}, 5)
    assert not await store.observe("a1", "BTC", True, lambda key: "{}", 2_000)
    assert not await store.observe("a1", "BTC", False, lambda key: "{}", 3_000)
    assert await store.observe("a1", "BTC", True, lambda key: "{}", 4_000)


async def test_owners_see_and_delete_only_their_own_and_the_limit_holds(database: Database) -> None:
    await database.migrate()
    store = AlertStore(database)
    assert await store.create(_alert("a1", "key:one"), "s", {}, 2)
    assert await store.create(_alert("a2", "key:one"), "s", {}, 2)
    assert not await store.create(_alert("a3", "key:one"), "s", {}, 2)  # the limit
    assert await store.create(_alert("b1", "key:two"), "s", {}, 2)
    assert [c.alert.id for c in await store.owned("key:one")] == ["a1", "a2"]
    assert not await store.delete("key:two", "a1")
    assert await store.delete("key:one", "a1")
    assert [c.alert.id for c in await store.owned("key:one")] == ["a2"]


async def test_deleting_an_alert_drops_its_pending_deliveries(database: Database) -> None:
    await database.migrate()
    store = AlertStore(database)
    assert await store.create(_alert(), "s", {"BTC": DOES_NOT_HOLD}, 5)
    assert await store.observe("a1", "BTC", True, lambda key: "{}", 2_000)
    assert (await store.owned("key:one"))[0].pending == 1
    assert await store.delete("key:one", "a1")
    assert await store.deliveries("a1") == []
    assert await store.claim(10_000, 1_000) == []


async def test_claims_lease_a_delivery_until_it_is_sent_failed_or_released(database: Database) -> None:
    await database.migrate()
    store = AlertStore(database)
    assert await store.create(_alert(), "s", {"BTC": DOES_NOT_HOLD}, 5)
    assert await store.observe("a1", "BTC", True, lambda key: "{}", 2_000)
    [claimed] = await store.claim(2_000, lease_ms=10_000)
    assert claimed.attempts == 1
    assert await store.claim(5_000, 10_000) == []  # leased
    await store.failed(claimed.id, "status 500", retry_at_ms=13_000)
    assert await store.claim(12_999, 10_000) == []
    [again] = await store.claim(13_000, 10_000)
    assert again.attempts == 2 and again.idempotency_key == claimed.idempotency_key
    await store.release([again.id], 14_000)  # shutdown mid-attempt: due at once, the attempt not counted
    [third] = await store.claim(14_000, 10_000)
    assert third.attempts == 2
    await store.sent(third.id, 15_000)
    assert await store.claim(10**12, 10_000) == []
    [row] = await store.deliveries("a1")
    assert row.status == SENT and row.sent_ms == 15_000
    assert (await store.owned("key:one"))[0].delivered == 1


async def test_a_delivery_past_its_window_is_given_up(database: Database) -> None:
    await database.migrate()
    store = AlertStore(database)
    assert await store.create(_alert(), "s", {"BTC": DOES_NOT_HOLD}, 5)
    assert await store.observe("a1", "BTC", True, lambda key: "{}", 2_000)
    [claimed] = await store.claim(2_000, 10_000)
    await store.failed(claimed.id, "status 500", retry_at_ms=None)
    [row] = await store.deliveries("a1")
    assert row.status == FAILED and row.last_error == "status 500"
    assert await store.claim(10**12, 10_000) == []


async def test_two_replicas_claiming_together_never_take_the_same_delivery(postgres: PostgresServer) -> None:
    database = Database(postgres.url)
    await database.downgrade("base")
    await database.migrate()
    stores = [AlertStore(database), AlertStore(Database(postgres.url))]
    for n in range(60):
        assert await stores[0].create(_alert(f"a{n}", "key:one"), "s", {"BTC": DOES_NOT_HOLD}, 100)
        assert await stores[0].observe(f"a{n}", "BTC", True, lambda key: "{}", 2_000)
    claims: list[list[int]] = [[], []]

    async def drain(k: int) -> None:
        while batch := await stores[k].claim(3_000, 60_000, limit=3):
            claims[k].extend(d.id for d in batch)
            await asyncio.sleep(0)

    await asyncio.gather(drain(0), drain(1))
    assert not set(claims[0]) & set(claims[1])
    assert len(claims[0]) + len(claims[1]) == 60
    assert claims[0] and claims[1]  # both worked, on different rows
    for store in stores:
        await store.database.aclose()


def test_conditions() -> None:
    assert holds("becomes_long", None, "LONG", 70.0)
    assert not holds("becomes_long", None, "NEUTRAL", 70.0)
    assert holds("becomes_short", None, "SHORT", 30.0)
    assert holds("score_above", 60.0, "NEUTRAL", 60.5) and not holds("score_above", 60.0, "NEUTRAL", 60.0)
    assert holds("score_below", 40.0, "NEUTRAL", 39.9) and not holds("score_below", 40.0, "NEUTRAL", 40.0)
