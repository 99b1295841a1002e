"""The history table: one row per (symbol, interval bucket), however many replicas record it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, Float, Index, Integer, MetaData, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Explicit constraint names: migrations drop and recreate them by name on every backend.
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_name)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "pk": "pk_%(table_name)s",
}

# Forward-return horizons filled once they have passed: name -> seconds.
HORIZONS = {"1h": 3600, "4h": 4 * 3600, "24h": 24 * 3600}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class SignalRow(Base):
    __tablename__ = "signal_history"
    __table_args__ = (
        # One row per coin, scoring profile and interval bucket (migration 0004 added the profile).
        UniqueConstraint("symbol", "profile", "bucket", name="uq_signal_history_symbol_profile_bucket"),
        Index("ix_signal_history_symbol_computed", "symbol", "computed_ms"),
    )

    # BigInteger on PostgreSQL, INTEGER (the rowid alias) on SQLite, so it autoincrements on both.
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    symbol: Mapped[str] = mapped_column(String(30))
    bucket: Mapped[int] = mapped_column(BigInteger)  # computed time // HISTORY_INTERVAL_SECONDS
    computed_ms: Mapped[int] = mapped_column(BigInteger)  # when the signal was computed, ms since epoch
    score: Mapped[float] = mapped_column(Float)
    signal: Mapped[str] = mapped_column(String(8))
    confidence: Mapped[str] = mapped_column(String(8))
    coverage: Mapped[float] = mapped_column(Float)
    price: Mapped[float | None] = mapped_column(Float, nullable=True)  # decision price, USD
    factors: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    config_hash: Mapped[str] = mapped_column(String(16))
    # The scoring profile that made the signal (seed, research); rows before 0004 are the seed's.
    profile: Mapped[str] = mapped_column(String(16), server_default="seed", default="seed")
    return_1h_pct: Mapped[float | None] = mapped_column(Float, nullable=True)
    return_4h_pct: Mapped[float | None] = mapped_column(Float, nullable=True)
    return_24h_pct: Mapped[float | None] = mapped_column(Float, nullable=True)


# ---- webhook alerts (migration 0002) ------------------------------------------------------------


class AlertRow(Base):
    """An alert: a condition on some coins' signals, the webhook it POSTs to, and who owns it."""

    __tablename__ = "alerts"
    __table_args__ = (Index("ix_alerts_owner", "owner"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner: Mapped[str] = mapped_column(String(80))  # "key:<hash of the bearer key>" or "addr:<address>"
    symbols: Mapped[list[str]] = mapped_column(JSON)
    condition: Mapped[str] = mapped_column(String(16))
    threshold: Mapped[float | None] = mapped_column(Float, nullable=True)  # 0-100 score
    webhook_url: Mapped[str] = mapped_column(String(2048))
    secret: Mapped[str] = mapped_column(String(80))  # the signing secret: here only (deliveries read it)
    created_ms: Mapped[int] = mapped_column(BigInteger)
    delivered: Mapped[int] = mapped_column(Integer, default=0)  # deliveries made (migration 0003), pruned or not


class AlertOwnerRow(Base):
    """How many alerts an owner holds (migration 0003): the per-owner cap is a conditional UPDATE
    of this row (``alerts < cap``), atomic on SQLite and PostgreSQL alike."""

    __tablename__ = "alert_owners"

    owner: Mapped[str] = mapped_column(String(80), primary_key=True)
    alerts: Mapped[int] = mapped_column(Integer)


class AlertStateRow(Base):
    """Whether an alert's condition held at the last signal of one coin ("1", "0"; "" unknown).

    Replicas fire a transition by compare-and-set on this row: exactly one of them wins."""

    __tablename__ = "alert_states"

    alert_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    symbol: Mapped[str] = mapped_column(String(30), primary_key=True)
    state: Mapped[str] = mapped_column(String(1))
    changed_ms: Mapped[int] = mapped_column(BigInteger)


class DeliveryRow(Base):
    """The outbox: one webhook POST to make, retried until delivered or given up."""

    __tablename__ = "alert_deliveries"
    __table_args__ = (
        UniqueConstraint("idempotency_key", name="uq_alert_deliveries_idempotency_key"),
        Index("ix_alert_deliveries_status_due", "status", "due_ms"),
        Index("ix_alert_deliveries_alert_id", "alert_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    alert_id: Mapped[str] = mapped_column(String(32))
    idempotency_key: Mapped[str] = mapped_column(String(64))
    url: Mapped[str] = mapped_column(String(2048))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(10))  # pending, sent, failed (given up)
    attempts: Mapped[int] = mapped_column(Integer)
    created_ms: Mapped[int] = mapped_column(BigInteger)
    # Pending: the next attempt, or while one is in flight its lease's end. Sent or given up: when
    # that was (pruning counts from it).
    due_ms: Mapped[int] = mapped_column(BigInteger)
    sent_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(300), nullable=True)
    # The claim an attempt in flight holds (migration 0003): only its holder may record a failure
    # or give the lease back.
    lease: Mapped[str | None] = mapped_column(String(32), nullable=True)
