"""The history table: one row per (symbol, interval bucket), however many replicas record it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, Float, Index, Integer, MetaData, String, UniqueConstraint
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
        UniqueConstraint("symbol", "bucket", name="uq_signal_history_symbol_bucket"),
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
    return_1h_pct: Mapped[float | None] = mapped_column(Float, nullable=True)
    return_4h_pct: Mapped[float | None] = mapped_column(Float, nullable=True)
    return_24h_pct: Mapped[float | None] = mapped_column(Float, nullable=True)
