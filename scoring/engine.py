"""Composite score: weighted mean of the factors with data, direction, confidence, explanations."""

from __future__ import annotations

from scoring.config import DEFAULT_CONFIG, ScoringConfig
from scoring.factors import READERS, InvalidMetricError
from scoring.model import FACTOR_NAMES, FactorResult, Missing, NoDataError, ScoredSignal, SignalInputs


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


def score_signal(inputs: SignalInputs, config: ScoringConfig = DEFAULT_CONFIG) -> ScoredSignal:
    readings = []
    missing: list[tuple[str, str]] = []
    for name in FACTOR_NAMES:
        value = getattr(inputs, name)
        if isinstance(value, Missing):
            missing.append((name, value.reason))
            continue
        try:
            reading = READERS[name](value, config)
        except InvalidMetricError as exc:
            missing.append((name, str(exc)))
            continue
        readings.append((name, reading, value.provenance))
    present_weight = sum(config.weights[name] for name, _, _ in readings)
    if present_weight <= 0:
        raise NoDataError(tuple(missing))
    factors = tuple(
        FactorResult(
            name=name,
            weight=config.weights[name],
            sub_score=reading.sub_score,
            contribution=(reading.sub_score - 50.0) * config.weights[name] / present_weight,
            metrics=reading.metrics,
            explanation=reading.explanation,
            source=provenance.source,
            as_of=provenance.as_of,
        )
        for name, reading, provenance in readings
    )
    score = min(100.0, max(0.0, 50.0 + sum(f.contribution for f in factors)))
    coverage = present_weight / config.total_weight
    if score >= config.long_threshold:
        direction = "LONG"
    elif score <= config.short_threshold:
        direction = "SHORT"
    else:
        direction = "NEUTRAL"
    side = 1.0 if score >= 50 else -1.0
    agreeing = sum(f.weight for f in factors if (f.sub_score - 50.0) * side > 0)
    agreement = agreeing / present_weight
    ranked = sorted(factors, key=lambda f: (-abs(f.contribution), FACTOR_NAMES.index(f.name)))
    top = tuple(f for f in ranked[:3] if f.weight > 0)
    return ScoredSignal(
        score=score,
        direction=direction,
        confidence=_confidence(score, coverage, agreement, config),
        coverage=coverage,
        factors=factors,
        top_factors=top,
        missing=tuple(missing),
        reason="; ".join(f.explanation for f in top),
    )
