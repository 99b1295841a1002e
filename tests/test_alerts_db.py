"""Alerts in the history database, on SQLite and on a real PostgreSQL: migrations 0002 and 0003 up
and down, the per-owner cap under concurrent creates, one delivery per transition however many
replicas observe it, the outbox claimed by one replica at a time (PostgreSQL ``FOR UPDATE SKIP
LOCKED``), completions checked against the lease, the secret stored once, finished rows pruned."""

from __future__ import annotations

import asyncio

from sqlalchemy import inspect, text

from records.alerts import DOES_NOT_HOLD, FAILED, PENDING, SENT, UNKNOWN, Alert, AlertStore, holds
from records.db import Database
from tests.postgres_server import PostgresServer

ALERT_TABLES = {"alerts", "alert_states", "alert_deliveries"}
HEAD = "0005"


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
    assert await database.current_revision() == HEAD
    assert await _tables(database) >= ALERT_TABLES
    store = AlertStore(database)
    assert await store.create(_alert(), "s", {"BTC": DOES_NOT_HOLD}, 5)
    await database.downgrade("0001")
    assert await database.current_revision() == "0001"
    assert not (ALERT_TABLES | {"alert_owners"}) & await _tables(database)
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
    assert await store.create(_alert("p1", "peer:ipv4:127.0.0.1"), "s", {}, 2)  # a keyless server's, once
    assert [a.id for a in await store.all()] == ["a1", "a2", "b1"]  # not evaluated: no one owns it
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
    assert await store.create(_alert(), "whsec_s", {"BTC": DOES_NOT_HOLD}, 5)
    assert await store.observe("a1", "BTC", True, lambda key: "{}", 2_000)
    [claimed] = await store.claim(2_000, lease_ms=10_000)
    assert claimed.attempts == 1 and claimed.secret == "whsec_s"  # the alert's secret, read at claim time
    assert await store.claim(5_000, 10_000) == []  # leased
    assert await store.failed(claimed, "status 500", retry_at_ms=13_000, now_ms=5_000)
    assert await store.claim(12_999, 10_000) == []
    [again] = await store.claim(13_000, 10_000)
    assert again.attempts == 2 and again.idempotency_key == claimed.idempotency_key
    await store.release([again], 14_000)  # shutdown mid-attempt: due at once, the attempt not counted
    [third] = await store.claim(14_000, 10_000)
    assert third.attempts == 2
    assert await store.sent(third, 15_000)
    assert await store.claim(10**12, 10_000) == []
    [row] = await store.deliveries("a1")
    assert row.status == SENT and row.sent_ms == 15_000
    assert (await store.owned("key:one"))[0].delivered == 1


async def test_completions_check_the_lease_and_nothing_resends_a_recorded_delivery(database: Database) -> None:
    """A claim whose lease ran out (a slow attempt, a paused replica) must not overwrite what the
    row's next claim did: not give up a delivery another claim delivered, not reschedule it, not
    give back a lease it no longer holds."""
    await database.migrate()
    store = AlertStore(database)
    assert await store.create(_alert(), "s", {"BTC": DOES_NOT_HOLD}, 5)
    assert await store.observe("a1", "BTC", True, lambda key: "{}", 2_000)
    [stale] = await store.claim(2_000, lease_ms=10_000)
    [current] = await store.claim(12_000, lease_ms=10_000)  # the first lease ran out: claimed again
    assert current.lease != stale.lease and current.idempotency_key == stale.idempotency_key
    assert not await store.failed(stale, "status 500", retry_at_ms=13_000, now_ms=12_500)  # not its lease
    await store.release([stale], 12_500)  # nor this
    assert await store.claim(13_000, 10_000) == []  # still leased to the current claim
    assert await store.sent(current, 14_000)
    # The stale attempt ends late, as a failure past the retry window: the delivery stays sent.
    assert not await store.failed(stale, "no answer", retry_at_ms=None, now_ms=15_000)
    assert not await store.failed(current, "no answer", retry_at_ms=None, now_ms=15_000)
    await store.release([stale, current], 15_000)  # shutdown after the delivery was recorded
    assert await store.claim(10**12, 10_000) == []  # never sent again
    [row] = await store.deliveries("a1")
    assert (row.status, row.sent_ms, row.last_error) == (SENT, 14_000, None)
    assert not await store.sent(stale, 16_000)  # recorded once
    assert (await store.owned("key:one"))[0].delivered == 1


async def test_the_secret_is_stored_once_per_alert(database: Database) -> None:
    await database.migrate()
    store = AlertStore(database)
    secret = "whsec_only_on_the_alert"
    assert await store.create(_alert(), secret, {"BTC": DOES_NOT_HOLD}, 5)
    for n in range(3):  # three transitions, three deliveries
        assert await store.observe("a1", "BTC", True, lambda key: "{}", 2_000 + 2 * n)
        assert not await store.observe("a1", "BTC", False, lambda key: "{}", 2_001 + 2 * n)
    async with database.engine.connect() as connection:
        columns = await connection.run_sync(lambda sync: inspect(sync).get_columns("alert_deliveries"))
        rows = (await connection.execute(text("SELECT * FROM alert_deliveries"))).all()
        copies = await connection.execute(text("SELECT COUNT(*) FROM alerts WHERE secret = :s"), {"s": secret})
        assert copies.scalar_one() == 1
    assert "secret" not in {c["name"] for c in columns}
    assert len(rows) == 3 and not any(secret in str(value) for row in rows for value in row)
    assert {d.secret for d in await store.claim(10_000, 1_000)} == {secret}


async def test_finished_deliveries_are_pruned_after_the_retention_and_with_their_alert(database: Database) -> None:
    await database.migrate()
    store = AlertStore(database)
    assert await store.create(_alert("a1"), "s", {"BTC": DOES_NOT_HOLD}, 5)
    for n in range(3):
        assert await store.observe("a1", "BTC", True, lambda key: "{}", 1_000 + 2 * n)
        assert not await store.observe("a1", "BTC", False, lambda key: "{}", 1_001 + 2 * n)
    delivered, abandoned, pending = await store.claim(2_000, 10_000)
    assert await store.sent(delivered, 3_000)
    assert await store.failed(abandoned, "status 500", retry_at_ms=None, now_ms=4_000)
    assert await store.prune(before_ms=3_000) == 0  # both finished at or after it
    assert await store.prune(before_ms=3_001) == 1  # the delivered one
    assert [r.id for r in await store.deliveries("a1")] == [abandoned.id, pending.id]
    assert await store.prune(before_ms=10**12) == 1  # the abandoned one; pending rows stay, however old
    assert [(r.id, r.status) for r in await store.deliveries("a1")] == [(pending.id, PENDING)]
    assert (await store.owned("key:one"))[0].delivered == 1  # the count outlives the rows
    # Deleting the alert drops every row of it, finished ones too.
    assert await store.create(_alert("a2"), "s", {"BTC": DOES_NOT_HOLD}, 5)
    assert await store.observe("a2", "BTC", True, lambda key: "{}", 1_000)
    [done] = await store.claim(2_000, 10_000)
    assert await store.sent(done, 3_000)
    assert await store.delete("key:one", "a2")
    assert await store.deliveries("a2") == []


async def test_concurrent_creates_never_exceed_the_cap(database: Database) -> None:
    """The review's race: 40 creates at once with a cap of 20 left 34 alerts (count, then insert)."""
    await database.migrate()
    replicas = [AlertStore(database), AlertStore(Database(database.url))]

    async def create(n: int) -> bool:
        store = replicas[n % 2]
        return await store.create(_alert(f"c{n}", "key:racer"), "s", {"BTC": DOES_NOT_HOLD}, 20)

    made = await asyncio.gather(*(create(n) for n in range(40)))
    assert sum(made) == 20
    assert await replicas[0].count("key:racer") == 20
    # Deleting gives the place back, once per alert.
    mine = [c.alert.id for c in await replicas[0].owned("key:racer")]
    assert await replicas[1].delete("key:racer", mine[0])
    assert not await replicas[1].delete("key:racer", mine[0])
    made = await asyncio.gather(*(create(100 + n) for n in range(10)))
    assert sum(made) == 1 and await replicas[0].count("key:racer") == 20
    assert await replicas[0].create(_alert("other", "key:other"), "s", {}, 20)  # another owner's cap
    await replicas[1].database.aclose()


async def test_migration_0003_keeps_alerts_and_counts(database: Database) -> None:
    """Alerts and deliveries written under 0002 (a secret copy per delivery): after 0003 the owner's
    count, the delivered count and the secret (from the alert) are right, and down again works."""
    await database.migrate("0002")
    async with database.engine.begin() as connection:
        for n, owner in enumerate(["key:one", "key:one", "key:two"]):
            await connection.execute(
                text(
                    "INSERT INTO alerts (id, owner, symbols, condition, threshold, webhook_url, secret, created_ms)"
                    " VALUES (:id, :owner, '[\"BTC\"]', 'becomes_long', NULL, 'https://example.com/h', :s, 1)"
                ),
                {"id": f"a{n}", "owner": owner, "s": f"whsec_{n}"},
            )
            await connection.execute(
                text("INSERT INTO alert_states (alert_id, symbol, state, changed_ms) VALUES (:id, 'BTC', '0', 1)"),
                {"id": f"a{n}"},
            )
        for n, status in enumerate([SENT, SENT, PENDING]):
            await connection.execute(
                text(
                    "INSERT INTO alert_deliveries (alert_id, idempotency_key, url, secret, body, status, attempts,"
                    " created_ms, due_ms) VALUES ('a0', :k, 'https://example.com/h', 'whsec_0', '{}', :st, 1, 1, 1)"
                ),
                {"k": f"k{n}", "st": status},
            )
    await database.migrate()
    store = AlertStore(database)
    assert [(c.alert.id, c.delivered, c.pending) for c in await store.owned("key:one")] == [
        ("a0", 2, 1),
        ("a1", 0, 0),
    ]
    assert not await store.create(_alert("a9", "key:one"), "s", {}, 2)  # two held already
    assert await store.create(_alert("a9", "key:two"), "s", {}, 2)
    [pending] = await store.claim(10, 1_000)
    assert pending.secret == "whsec_0"
    await database.downgrade("0002")
    async with database.engine.connect() as connection:
        secrets = (await connection.execute(text("SELECT DISTINCT secret FROM alert_deliveries"))).scalars().all()
    assert secrets == ["whsec_0"]


async def test_a_delivery_past_its_window_is_given_up(database: Database) -> None:
    await database.migrate()
    store = AlertStore(database)
    assert await store.create(_alert(), "s", {"BTC": DOES_NOT_HOLD}, 5)
    assert await store.observe("a1", "BTC", True, lambda key: "{}", 2_000)
    [claimed] = await store.claim(2_000, 10_000)
    assert await store.failed(claimed, "status 500", retry_at_ms=None, now_ms=3_000)
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
