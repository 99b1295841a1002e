"""Alerts in the history database: the alerts, their condition states, and the delivery outbox.

The per-owner cap is a counter row per owner, taken by a conditional UPDATE (``alerts < cap``) in
the transaction that inserts the alert: PostgreSQL locks the row and re-checks the condition after
a concurrent taker commits, SQLite runs one writer at a time, so concurrent creates never exceed
the cap on either (a count then an insert could).

A transition fires by compare-and-set on the alert's state row for that coin, in the same
transaction that writes the delivery: replicas evaluating the same signal write one delivery
between them. Deliveries are claimed with ``SELECT ... FOR UPDATE SKIP LOCKED`` (PostgreSQL) and a
lease (``due_ms`` moves past the attempt's timeout, ``lease`` names the claim), so two replicas
never send the same one at once; SQLite is single-process and its one dispatcher claims alone.
Completions check the lease: a failure is recorded, and a lease given back, only by the claim that
holds it; a success is recorded by whoever made it while the row is pending (it is a fact, and it
stops a later holder's retries), and once recorded nothing sends that delivery again.

The signing secret is stored once, on the alert; a delivery row holds the URL and body, and
finished rows (sent or given up) are pruned after the retention the dispatcher passes, and with
their alert when it is deleted.

The guarantee is at least once: a POST whose answer is lost (a timeout, a crash before the answer
is recorded) is sent again with the same ``Idempotency-Key``, which receivers use to drop repeats.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import case, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from records.db import Database
from records.models import AlertOwnerRow, AlertRow, AlertStateRow, DeliveryRow

CONDITIONS = ("becomes_long", "becomes_short", "score_above", "score_below")
PENDING, SENT, FAILED = "pending", "sent", "failed"
UNKNOWN, HOLDS, DOES_NOT_HOLD = "", "1", "0"
OWNER_PREFIX = "key:"  # owners are client keys (a hash of the key)


def holds(condition: str, threshold: float | None, direction: str, score: float) -> bool:
    """Whether ``condition`` is true of a signal (its class and 0-100 score)."""
    if condition == "becomes_long":
        return direction == "LONG"
    if condition == "becomes_short":
        return direction == "SHORT"
    assert threshold is not None
    if condition == "score_above":
        return score > threshold
    if condition == "score_below":
        return score < threshold
    raise ValueError(f"unknown condition {condition!r}")


@dataclass(frozen=True, slots=True)
class Alert:
    id: str
    owner: str
    symbols: tuple[str, ...]
    condition: str
    threshold: float | None
    webhook_url: str
    created_ms: int


@dataclass(frozen=True, slots=True)
class AlertCounts:
    alert: Alert
    delivered: int
    pending: int


@dataclass(frozen=True, slots=True)
class Delivery:
    id: int
    alert_id: str
    idempotency_key: str
    url: str
    secret: str  # the alert's, read at claim time
    body: str
    attempts: int  # including the one just claimed
    created_ms: int
    lease: str  # this claim's token: completions are checked against it


# Every column of an alert but its secret, which only claims (signing) read.
_ALERT_COLUMNS = (
    AlertRow.id,
    AlertRow.owner,
    AlertRow.symbols,
    AlertRow.condition,
    AlertRow.threshold,
    AlertRow.webhook_url,
    AlertRow.created_ms,
)


def _alert(row: AlertRow) -> Alert:
    return Alert(
        row.id, row.owner, tuple(row.symbols), row.condition, row.threshold, row.webhook_url, int(row.created_ms)
    )


class AlertStore:
    def __init__(self, database: Database) -> None:
        self.database = database
        self.engine = database.engine

    # ---- alerts --------------------------------------------------------------------------------

    async def create(self, alert: Alert, secret: str, states: dict[str, str], max_per_owner: int) -> bool:
        """Store ``alert`` with its initial state per coin; False if its owner has ``max_per_owner``.

        Atomic: the owner's counter row is taken by a conditional UPDATE first (the statement
        that writes, so SQLite's writer lock is held from it on), then the alert inserted."""
        dialect_insert = postgresql.insert if self.database.dialect == "postgresql" else sqlite.insert
        owner_row = dialect_insert(AlertOwnerRow).values(owner=alert.owner, alerts=0)
        async with self.engine.begin() as connection:
            await connection.execute(owner_row.on_conflict_do_nothing(index_elements=["owner"]))
            taken = await connection.execute(
                update(AlertOwnerRow)
                .where(AlertOwnerRow.owner == alert.owner, AlertOwnerRow.alerts < max_per_owner)
                .values(alerts=AlertOwnerRow.alerts + 1)
            )
            if not taken.rowcount:
                return False
            await connection.execute(
                insert(AlertRow).values(
                    id=alert.id,
                    owner=alert.owner,
                    symbols=list(alert.symbols),
                    condition=alert.condition,
                    threshold=alert.threshold,
                    webhook_url=alert.webhook_url,
                    secret=secret,
                    created_ms=alert.created_ms,
                    delivered=0,
                )
            )
            await connection.execute(
                insert(AlertStateRow),
                [
                    {"alert_id": alert.id, "symbol": s, "state": states.get(s, UNKNOWN), "changed_ms": alert.created_ms}
                    for s in alert.symbols
                ],
            )
        return True

    async def all(self) -> list[Alert]:
        """Every alert a client key owns, oldest first. Alerts a keyless server once filed under
        the caller's address ("peer:...", before alerts needed keys) are no one's to list or
        delete: they are not evaluated (an operator deletes them; they stay for that)."""
        query = (
            select(*_ALERT_COLUMNS)
            .where(AlertRow.owner.startswith(OWNER_PREFIX))
            .order_by(AlertRow.created_ms, AlertRow.id)
        )
        async with self.engine.connect() as connection:
            rows = (await connection.execute(query)).all()
        return [_alert(AlertRow(**row._mapping)) for row in rows]

    async def owned(self, owner: str) -> list[AlertCounts]:
        """The owner's alerts, oldest first, with their delivered (ever) and pending counts."""
        counts = (
            select(
                DeliveryRow.alert_id,
                func.sum(case((DeliveryRow.status == PENDING, 1), else_=0)).label("pending"),
            )
            .group_by(DeliveryRow.alert_id)
            .subquery()
        )
        query = (
            select(*_ALERT_COLUMNS, AlertRow.delivered, counts.c.pending)
            .outerjoin(counts, counts.c.alert_id == AlertRow.id)
            .where(AlertRow.owner == owner)
            .order_by(AlertRow.created_ms, AlertRow.id)
        )
        async with self.engine.connect() as connection:
            rows = (await connection.execute(query)).all()
        result = []
        for row in rows:
            mapping = dict(row._mapping)
            delivered, pending = mapping.pop("delivered"), mapping.pop("pending")
            result.append(AlertCounts(_alert(AlertRow(**mapping)), int(delivered or 0), int(pending or 0)))
        return result

    async def count(self, owner: str) -> int:
        async with self.engine.connect() as connection:
            query = select(func.count()).select_from(AlertRow).where(AlertRow.owner == owner)
            return int((await connection.execute(query)).scalar_one())

    async def delete(self, owner: str, alert_id: str) -> bool:
        """Delete one of ``owner``'s alerts, its states and its deliveries (pending or finished: a
        delivery row lives no longer than its alert), and give back its place under the cap."""
        async with self.engine.begin() as connection:
            result = await connection.execute(delete(AlertRow).where(AlertRow.id == alert_id, AlertRow.owner == owner))
            if not result.rowcount:
                return False
            await connection.execute(
                update(AlertOwnerRow)
                .where(AlertOwnerRow.owner == owner, AlertOwnerRow.alerts > 0)
                .values(alerts=AlertOwnerRow.alerts - 1)
            )
            await connection.execute(delete(AlertStateRow).where(AlertStateRow.alert_id == alert_id))
            await connection.execute(delete(DeliveryRow).where(DeliveryRow.alert_id == alert_id))
        return True

    # ---- transitions ---------------------------------------------------------------------------

    async def observe(
        self, alert_id: str, symbol: str, now_holds: bool, body: Callable[[str], str], now_ms: int
    ) -> bool:
        """Record whether the condition holds now; when it turns from not holding to holding, write
        a delivery (``body`` of its idempotency key) and return True. Atomic across replicas: only
        the replica whose compare-and-set changes the row writes the delivery."""
        table = AlertStateRow
        where = (table.alert_id == alert_id, table.symbol == symbol)
        async with self.engine.begin() as connection:
            if not now_holds:
                await connection.execute(
                    update(table)
                    .where(*where, table.state != DOES_NOT_HOLD)
                    .values(state=DOES_NOT_HOLD, changed_ms=now_ms)
                )
                return False
            # Unknown (no signal at creation) becomes known without firing: nothing "became" true.
            await connection.execute(
                update(table).where(*where, table.state == UNKNOWN).values(state=HOLDS, changed_ms=now_ms)
            )
            fired = await connection.execute(
                update(table).where(*where, table.state == DOES_NOT_HOLD).values(state=HOLDS, changed_ms=now_ms)
            )
            if not fired.rowcount:
                return False
            alert = (await connection.execute(select(AlertRow.webhook_url).where(AlertRow.id == alert_id))).first()
            if alert is None:
                return False  # deleted meanwhile
            key = uuid.uuid4().hex
            await connection.execute(
                insert(DeliveryRow).values(
                    alert_id=alert_id,
                    idempotency_key=key,
                    url=alert.webhook_url,
                    body=body(key),
                    status=PENDING,
                    attempts=0,
                    created_ms=now_ms,
                    due_ms=now_ms,
                )
            )
        return True

    # ---- the outbox ----------------------------------------------------------------------------

    async def claim(self, now_ms: int, lease_ms: int, limit: int = 20, skip_urls: Sequence[str] = ()) -> list[Delivery]:
        """Due deliveries, each leased to this caller until ``now_ms + lease_ms`` (attempts + 1),
        with their alert's secret; none to ``skip_urls`` (targets the caller has no room for).

        Rows another replica is claiming right now are skipped (SKIP LOCKED), and a leased row is
        not due until its lease ends, so no two replicas send one delivery at the same time."""
        query = (
            select(*DeliveryRow.__table__.columns, AlertRow.secret.label("alert_secret"))
            .join(AlertRow, AlertRow.id == DeliveryRow.alert_id)
            .where(DeliveryRow.status == PENDING, DeliveryRow.due_ms <= now_ms)
            .order_by(DeliveryRow.due_ms, DeliveryRow.id)
            .limit(limit)
            .with_for_update(skip_locked=True, of=DeliveryRow)
        )
        if skip_urls:
            query = query.where(DeliveryRow.url.not_in(list(skip_urls)))
        lease = uuid.uuid4().hex
        async with self.engine.begin() as connection:
            rows = []
            for row in (await connection.execute(query)).all():
                mapping = dict(row._mapping)
                secret = mapping.pop("alert_secret")
                rows.append((DeliveryRow(**mapping), str(secret)))
            if not rows:
                return []
            await connection.execute(
                update(DeliveryRow)
                .where(DeliveryRow.id.in_([r.id for r, _ in rows]))
                .values(due_ms=now_ms + lease_ms, attempts=DeliveryRow.attempts + 1, lease=lease)
            )
        return [
            Delivery(
                r.id, r.alert_id, r.idempotency_key, r.url, secret, r.body, r.attempts + 1, int(r.created_ms), lease
            )
            for r, secret in rows
        ]

    async def sent(self, delivery: Delivery, now_ms: int) -> bool:
        """Record a delivery made: True if this recorded it, False if it was no longer pending
        (recorded already, or its alert deleted). Whoever holds the lease now: a delivery is a
        fact, and recording it ends the retries of a later claim of the same row."""
        async with self.engine.begin() as connection:
            result = await connection.execute(
                update(DeliveryRow)
                .where(DeliveryRow.id == delivery.id, DeliveryRow.status == PENDING)
                .values(status=SENT, sent_ms=now_ms, due_ms=now_ms, last_error=None, lease=None)
            )
            if not result.rowcount:
                return False
            await connection.execute(
                update(AlertRow).where(AlertRow.id == delivery.alert_id).values(delivered=AlertRow.delivered + 1)
            )
        return True

    async def failed(self, delivery: Delivery, error: str, retry_at_ms: int | None, now_ms: int) -> bool:
        """A failed attempt: retried at ``retry_at_ms``, or given up when it is None. Only while
        ``delivery``'s claim still holds the lease (False otherwise: the row has moved on, to
        another claim or to sent, and this attempt's outcome must not overwrite that)."""
        values: dict[str, object] = {"last_error": error[:300], "lease": None}
        values.update({"due_ms": retry_at_ms} if retry_at_ms is not None else {"status": FAILED, "due_ms": now_ms})
        async with self.engine.begin() as connection:
            result = await connection.execute(
                update(DeliveryRow)
                .where(
                    DeliveryRow.id == delivery.id, DeliveryRow.lease == delivery.lease, DeliveryRow.status == PENDING
                )
                .values(**values)
            )
        return bool(result.rowcount)

    async def release(self, deliveries: Sequence[Delivery], now_ms: int) -> None:
        """Give back leases of attempts cut short before any answer (shutdown): due again at once,
        for any replica, the attempt not counted. A lease no longer held, or a delivery already
        recorded as sent, is left alone."""
        if not deliveries:
            return
        async with self.engine.begin() as connection:
            for delivery in deliveries:
                await connection.execute(
                    update(DeliveryRow)
                    .where(
                        DeliveryRow.id == delivery.id,
                        DeliveryRow.lease == delivery.lease,
                        DeliveryRow.status == PENDING,
                    )
                    .values(due_ms=now_ms, attempts=DeliveryRow.attempts - 1, lease=None)
                )

    async def prune(self, before_ms: int) -> int:
        """Delete finished deliveries (sent or given up) that finished before ``before_ms``."""
        async with self.engine.begin() as connection:
            result = await connection.execute(
                delete(DeliveryRow).where(DeliveryRow.status.in_([SENT, FAILED]), DeliveryRow.due_ms < before_ms)
            )
        return int(result.rowcount or 0)

    async def deliveries(self, alert_id: str | None = None) -> list[DeliveryRow]:
        """Every delivery row (of one alert), oldest first: for tests and operators."""
        query = select(DeliveryRow).order_by(DeliveryRow.id)
        if alert_id is not None:
            query = query.where(DeliveryRow.alert_id == alert_id)
        async with self.engine.connect() as connection:
            return [DeliveryRow(**row._mapping) for row in (await connection.execute(query)).all()]
