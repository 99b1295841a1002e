"""Alerts in the history database: the alerts, their condition states, and the delivery outbox.

A transition fires by compare-and-set on the alert's state row for that coin, in the same
transaction that writes the delivery: replicas evaluating the same signal write one delivery
between them. Deliveries are claimed with ``SELECT ... FOR UPDATE SKIP LOCKED`` (PostgreSQL) and a
lease (``due_ms`` moves past the attempt's timeout), so two replicas never send the same one at
once; SQLite is single-process and its one dispatcher claims alone.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import case, delete, func, insert, select, update

from records.db import Database
from records.models import AlertRow, AlertStateRow, DeliveryRow

CONDITIONS = ("becomes_long", "becomes_short", "score_above", "score_below")
PENDING, SENT, FAILED = "pending", "sent", "failed"
UNKNOWN, HOLDS, DOES_NOT_HOLD = "", "1", "0"


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
    secret: str
    body: str
    attempts: int  # including the one just claimed
    created_ms: int


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
        """Store ``alert`` with its initial state per coin; False if its owner has ``max_per_owner``."""
        async with self.engine.begin() as connection:
            count = (
                await connection.execute(
                    select(func.count()).select_from(AlertRow).where(AlertRow.owner == alert.owner)
                )
            ).scalar_one()
            if count >= max_per_owner:
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
        async with self.engine.connect() as connection:
            rows = (await connection.execute(select(AlertRow).order_by(AlertRow.created_ms))).all()
        return [_alert(AlertRow(**row._mapping)) for row in rows]

    async def owned(self, owner: str) -> list[AlertCounts]:
        """The owner's alerts, oldest first, with their delivered and pending counts."""
        counts = (
            select(
                DeliveryRow.alert_id,
                func.sum(case((DeliveryRow.status == SENT, 1), else_=0)).label("delivered"),
                func.sum(case((DeliveryRow.status == PENDING, 1), else_=0)).label("pending"),
            )
            .group_by(DeliveryRow.alert_id)
            .subquery()
        )
        query = (
            select(AlertRow, counts.c.delivered, counts.c.pending)
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
        """Delete one of ``owner``'s alerts, its states and its pending deliveries (sent ones stay)."""
        async with self.engine.begin() as connection:
            result = await connection.execute(delete(AlertRow).where(AlertRow.id == alert_id, AlertRow.owner == owner))
            if not result.rowcount:
                return False
            await connection.execute(delete(AlertStateRow).where(AlertStateRow.alert_id == alert_id))
            await connection.execute(
                delete(DeliveryRow).where(DeliveryRow.alert_id == alert_id, DeliveryRow.status == PENDING)
            )
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
            alert = (
                await connection.execute(select(AlertRow.webhook_url, AlertRow.secret).where(AlertRow.id == alert_id))
            ).first()
            if alert is None:
                return False  # deleted meanwhile
            key = uuid.uuid4().hex
            await connection.execute(
                insert(DeliveryRow).values(
                    alert_id=alert_id,
                    idempotency_key=key,
                    url=alert.webhook_url,
                    secret=alert.secret,
                    body=body(key),
                    status=PENDING,
                    attempts=0,
                    created_ms=now_ms,
                    due_ms=now_ms,
                )
            )
        return True

    # ---- the outbox ----------------------------------------------------------------------------

    async def claim(self, now_ms: int, lease_ms: int, limit: int = 20) -> list[Delivery]:
        """Due deliveries, each leased to this caller until ``now_ms + lease_ms`` (attempts + 1).

        Rows another replica is claiming right now are skipped (SKIP LOCKED), and a leased row is
        not due until its lease ends, so no two replicas send one delivery at the same time."""
        query = (
            select(DeliveryRow)
            .where(DeliveryRow.status == PENDING, DeliveryRow.due_ms <= now_ms)
            .order_by(DeliveryRow.due_ms, DeliveryRow.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        async with self.engine.begin() as connection:
            rows = [DeliveryRow(**row._mapping) for row in (await connection.execute(query)).all()]
            if not rows:
                return []
            await connection.execute(
                update(DeliveryRow)
                .where(DeliveryRow.id.in_([r.id for r in rows]))
                .values(due_ms=now_ms + lease_ms, attempts=DeliveryRow.attempts + 1)
            )
        return [
            Delivery(r.id, r.alert_id, r.idempotency_key, r.url, r.secret, r.body, r.attempts + 1, int(r.created_ms))
            for r in rows
        ]

    async def sent(self, delivery_id: int, now_ms: int) -> None:
        async with self.engine.begin() as connection:
            await connection.execute(
                update(DeliveryRow)
                .where(DeliveryRow.id == delivery_id)
                .values(status=SENT, sent_ms=now_ms, last_error=None)
            )

    async def failed(self, delivery_id: int, error: str, retry_at_ms: int | None) -> None:
        """A failed attempt: retried at ``retry_at_ms``, or given up when it is None."""
        values: dict[str, object] = {"last_error": error[:300]}
        values.update({"due_ms": retry_at_ms} if retry_at_ms is not None else {"status": FAILED})
        async with self.engine.begin() as connection:
            await connection.execute(update(DeliveryRow).where(DeliveryRow.id == delivery_id).values(**values))

    async def release(self, delivery_ids: Sequence[int], now_ms: int) -> None:
        """Give back leases of attempts cut short (shutdown): due again at once, for any replica."""
        if not delivery_ids:
            return
        async with self.engine.begin() as connection:
            await connection.execute(
                update(DeliveryRow)
                .where(DeliveryRow.id.in_(list(delivery_ids)), DeliveryRow.status == PENDING)
                .values(due_ms=now_ms, attempts=DeliveryRow.attempts - 1)
            )

    async def deliveries(self, alert_id: str | None = None) -> list[DeliveryRow]:
        """Every delivery row (of one alert), oldest first: for tests and operators."""
        query = select(DeliveryRow).order_by(DeliveryRow.id)
        if alert_id is not None:
            query = query.where(DeliveryRow.alert_id == alert_id)
        async with self.engine.connect() as connection:
            return [DeliveryRow(**row._mapping) for row in (await connection.execute(query)).all()]
