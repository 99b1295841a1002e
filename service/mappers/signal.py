"""LiveSignal (signals/) -> Signal message (proto). Pure functions, no I/O."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime

from cryptosignals.v1 import signal_pb2
from google.protobuf import timestamp_pb2

from scoring import ScoringConfig
from signals.desk import LiveSignal
from signals.market import TimeframeView

_DIRECTION = {"LONG": signal_pb2.LONG, "SHORT": signal_pb2.SHORT, "NEUTRAL": signal_pb2.NEUTRAL}
_CONFIDENCE = {"high": signal_pb2.high, "medium": signal_pb2.medium, "low": signal_pb2.low}


def timestamp(moment: datetime) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(moment)
    return ts


def funding_fraction(pct_per_8h: float) -> float:
    """The headline funding rate as exchanges and the seed write it: a fraction per 8h (0.0001 = 0.01 %).

    The signal's funding input is percent per 8h (``FundingInput.rate_pct``; the provider clients
    convert other funding intervals to 8h). Kept to 12 significant digits: no float noise from the
    division (0.01799 -> 0.0001799, not 0.00017990000000000002).
    """
    return float(f"{pct_per_8h / 100:.12g}")


def signal_message(live: LiveSignal, *, config: ScoringConfig, debug: bool) -> signal_pb2.Signal:
    scored = live.scored
    message = signal_pb2.Signal(
        symbol=live.symbol,
        timestamp=timestamp(live.computed_at),
        signal=_DIRECTION[scored.direction],
        reason=scored.reason,
        score=round(scored.score, 2),
        confidence=_CONFIDENCE[scored.confidence],
        coverage=round(scored.coverage, 4),
        top_factors=[
            signal_pb2.FactorExplanation(
                factor=f.name, explanation=f.explanation, contribution=round(f.contribution, 2)
            )
            for f in scored.top_factors
        ],
        missing_factors=[signal_pb2.MissingFactor(factor=name, reason=reason) for name, reason in scored.missing],
        profile=live.profile,
    )
    if live.price is not None:
        message.price = live.price
    if live.funding_rate_pct is not None:
        message.funding_rate = funding_fraction(live.funding_rate_pct)
    if live.open_interest_usd is not None:
        message.open_interest = live.open_interest_usd
    if live.social_score is not None:
        message.social_score = live.social_score
    if debug:
        # Scored factors (stale only if served from cache past its TTL), then those dropped as too old.
        dropped = {f.name for f in scored.stale}
        for f in (*scored.factors, *scored.stale):
            detail = signal_pb2.FactorDetail(
                factor=f.name,
                weight=f.weight,
                sub_score=round(f.sub_score, 2),
                contribution=round(f.contribution, 2),
                source=f.source,
                metrics=dict(f.metrics),
                explanation=f.explanation,
                fallback_reason=live.fallback_reasons.get(f.name, ""),
                stale=f.name in dropped or f.source.split(":", 1)[-1] in live.stale_endpoints,
            )
            if f.as_of is not None:
                detail.data_time.CopyFrom(timestamp(f.as_of))
            message.factors.append(detail)
        band = scored.band
        if band is not None:
            message.confidence_band.CopyFrom(
                signal_pb2.ConfidenceBand(
                    score_distance_from=band.low,
                    hit_rate=band.hit_rate,
                    hit_rate_ci95_low=band.ci_low,
                    hit_rate_ci95_high=band.ci_high,
                    positions=band.positions,
                )
            )
            if math.isfinite(band.high):
                message.confidence_band.score_distance_to = band.high
        message.config.CopyFrom(
            signal_pb2.ScoringConfig(
                weights=dict(config.weights),
                long_threshold=config.long_threshold,
                short_threshold=config.short_threshold,
                scales=dict(config.scales),
                momentum_weights={h: w for h, (w, _) in config.momentum_horizons.items()},
                momentum_scales_pct={h: scale for h, (_, scale) in config.momentum_horizons.items()},
                confidence_rules=dict(config.confidence),
                max_age_hours=dict(config.max_age_hours),
            )
        )
    return message


def timeframe_messages(views: Sequence[TimeframeView]) -> list[signal_pb2.TimeframeView]:
    """A debug signal's 1h/4h/1d structure views."""
    messages = []
    for view in views:
        message = signal_pb2.TimeframeView(interval=view.interval, trend=view.trend, error=view.error)
        report = view.report
        if report is not None:
            message.bars = report.structure.bars
            message.source = report.history.source
            if report.reading is not None:
                message.structure_reading = report.reading
            if report.structure.location is not None:
                message.zone = report.structure.location.zone
        messages.append(message)
    return messages
