"""What the history database gives back: plain domain values, never a database row.

The service maps these to proto (service/mappers/history.py); nothing above records/ sees SQLAlchemy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class RecordedFactor:
    """One factor of a recorded signal, as it was scored then."""

    factor: str
    sub_score: float
    weight: float
    contribution: float
    source: str
    metrics: Mapping[str, float]
    data_time_ms: int | None  # when the factor's data was observed, if the source said

    @classmethod
    def from_json(cls, stored: Mapping[str, Any]) -> RecordedFactor:
        return cls(
            factor=stored["factor"],
            sub_score=stored["sub_score"],
            weight=stored["weight"],
            contribution=stored["contribution"],
            source=stored["source"],
            metrics=dict(stored["metrics"]),
            data_time_ms=stored.get("data_time_ms"),
        )


@dataclass(frozen=True, slots=True)
class RecordedSignal:
    """A signal as the recorder stored it, with the forward returns the outcome filler added."""

    id: int
    symbol: str
    bucket: int  # computed time // HISTORY_INTERVAL_SECONDS: one row per coin and interval
    computed_ms: int
    score: float
    signal: str
    confidence: str
    coverage: float
    price: float | None  # decision price, USD
    config_hash: str
    factors: tuple[RecordedFactor, ...]
    returns_pct: Mapping[str, float | None]  # horizon ("1h", "4h", "24h") -> forward return, percent
    profile: str = "seed"  # the scoring profile that made it
