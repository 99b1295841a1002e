"""Composite score: weighted mean of the factors with data, direction, confidence, explanations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from scoring.config import DEFAULT_CONFIG, ScoringConfig
from scoring.factors import READERS, InvalidMetricError, Reading
from scoring.model import FACTOR_NAMES, CalibrationBand, FactorResult, Missing, NoDataError, ScoredSignal, SignalInputs


def _confidence(score: float, coverage: float, agreement: float, c: ScoringConfig) -> str:
    rules = c.confidence
    distance = abs(score - 50.0)
    if (
        distance >= rules["high_distance"]
        and coverage >= rules["coverage_floor"]
        and agreement >= rules["high_agreement"]
    ):
        return "high"
    if (
        distance >= rules["medium_distance"]
        and coverage >= rules["medium_coverage"]
        and agreement >= rules["medium_agreement"]
    ):
        return "medium"
    return "low"


_NO_REVERSAL = dict.fromkeys(FACTOR_NAMES, False)


def direction_of(score: float, config: ScoringConfig) -> str:
    """LONG at or above the long threshold, SHORT at or below the short one, else NEUTRAL."""
    if score >= config.long_threshold:
        return "LONG"
    if score <= config.short_threshold:
        return "SHORT"
    return "NEUTRAL"


def stale_reason(as_of: datetime, max_age: timedelta) -> str:
    """The missingFactors reason of a factor dropped for old data."""
    hours = max_age.total_seconds() / 3600
    return f"stale: data from {as_of.astimezone(UTC):%Y-%m-%d %H:%M} UTC, older than {hours:g}h"


def score_signal(
    inputs: SignalInputs, config: ScoringConfig = DEFAULT_CONFIG, *, now: datetime | None = None
) -> ScoredSignal:
    """Score the factors with data. ``now`` is the decision time (live: the current time; replay:
    the close of the bar): a factor whose data time (``Provenance.as_of``) is older than its
    ``max_age_hours`` at ``now`` is dropped as stale (missing, with the reason, and kept in
    ``ScoredSignal.stale`` for debug output). ``now=None`` judges no age (pure scoring of given data).
    """
    weights = config.weights
    reversal = config.reversal or _NO_REVERSAL
    max_age = config.max_age if now is not None else None
    readings = []
    missing: list[tuple[str, str]] = []
    stale: list[FactorResult] = []
    present_weight = 0.0
    # vars() keeps field order (FACTOR_NAMES order) and avoids eight getattr calls.
    for name, value in vars(inputs).items():
        if type(value) is Missing:
            missing.append((name, value.reason))
            continue
        try:
            reading = READERS[name](value, config)
        except InvalidMetricError as exc:
            missing.append((name, str(exc)))
            continue
        if reversal[name]:
            reading = Reading(100.0 - reading.sub_score, reading.metrics)
        provenance = value.provenance
        if max_age is not None and provenance.as_of is not None and name in max_age:
            assert now is not None
            if now - provenance.as_of > max_age[name]:
                missing.append((name, stale_reason(provenance.as_of, max_age[name])))
                stale.append(
                    FactorResult(
                        name,
                        weights[name],
                        reading.sub_score,
                        0.0,
                        reading.metrics,
                        provenance.source,
                        provenance.as_of,
                        reversal[name],
                    )  # shown in debug output; contributes nothing
                )
                continue
        readings.append((name, reading, provenance))
        present_weight += weights[name]
    if present_weight <= 0:
        raise NoDataError(tuple(missing))
    factors = []
    total = 0.0
    agreeing_up = agreeing_down = 0.0
    for name, reading, provenance in readings:
        weight = weights[name]
        contribution = (reading.sub_score - 50.0) * weight / present_weight
        total += contribution
        if reading.sub_score > 50.0:
            agreeing_up += weight
        elif reading.sub_score < 50.0:
            agreeing_down += weight
        factors.append(
            FactorResult(
                name,
                weight,
                reading.sub_score,
                contribution,
                reading.metrics,
                provenance.source,
                provenance.as_of,
                reversal[name],
            )
        )
    score = min(100.0, max(0.0, 50.0 + total))
    coverage = present_weight / config.total_weight
    direction = direction_of(score, config)
    agreement = (agreeing_up if score >= 50 else agreeing_down) / present_weight
    # Stable sort: ties keep FACTOR_NAMES order, so the top three are deterministic.
    ranked = sorted(factors, key=_magnitude, reverse=True)
    top = tuple(f for f in ranked[:3] if f.weight > 0)
    band = config.band(score) if config.calibration and direction != "NEUTRAL" else None
    return ScoredSignal(
        score,
        direction,
        _calibrated(band) if config.calibration else _confidence(score, coverage, agreement, config),
        coverage,
        tuple(factors),
        top,
        tuple(missing),
        tuple(stale),
        band,
    )


def _calibrated(band: CalibrationBand | None) -> str:
    """A calibrated profile's confidence is a measured probability: "high" when the band's
    out-of-sample hit rate is above 50 % with its whole 95 % interval, "medium" when only the rate
    is, "low" otherwise (and for NEUTRAL, which takes no position)."""
    if band is None:
        return "low"
    if band.ci_low > 0.5:
        return "high"
    return "medium" if band.hit_rate > 0.5 else "low"


def _magnitude(factor: FactorResult) -> float:
    return abs(factor.contribution)
