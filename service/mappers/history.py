"""HistoryService's mapping: a recorded signal (records/) -> HistoryEntry message."""

from __future__ import annotations

from cryptosignals.v1 import history_pb2

from records.models import HORIZONS
from records.recorded import RecordedSignal
from service.mappers.backtest import CONFIDENCE, DIRECTION
from service.mappers.signal import timestamp
from signals.inputs import from_ms


def history_entry(recorded: RecordedSignal) -> history_pb2.HistoryEntry:
    message = history_pb2.HistoryEntry(
        time=timestamp(from_ms(recorded.computed_ms)),
        score=round(recorded.score, 2),
        signal=DIRECTION[recorded.signal],
        confidence=CONFIDENCE[recorded.confidence],
        coverage=recorded.coverage,
        config_hash=recorded.config_hash,
        profile=recorded.profile,
    )
    if recorded.price is not None:
        message.price = recorded.price
    for f in recorded.factors:
        factor = history_pb2.RecordedFactor(
            factor=f.factor,
            sub_score=f.sub_score,
            weight=f.weight,
            contribution=f.contribution,
            source=f.source,
            metrics=f.metrics,
        )
        if f.data_time_ms is not None:
            factor.data_time.CopyFrom(timestamp(from_ms(f.data_time_ms)))
        message.factors.append(factor)
    for horizon in HORIZONS:
        value = recorded.returns_pct.get(horizon)
        if value is not None:
            setattr(message, f"forward_return_{horizon}_pct", round(value, 4))
    return message
