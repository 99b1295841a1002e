"""Table tests: thresholds, each factor's direction, bad inputs, configuration."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import pytest

from scoring import (
    FearGreedInput,
    FundingInput,
    LiquidationInput,
    LongShortInput,
    Missing,
    MomentumInput,
    NoDataError,
    OpenInterestInput,
    Provenance,
    ScoringConfigError,
    SignalInputs,
    SmartMoneyInput,
    SocialInput,
    load_config,
    score_signal,
)

P = Provenance("test", None)
NOTHING = SignalInputs(*(Missing("absent") for _ in range(8)))


def only(**factor: Any) -> SignalInputs:
    return dataclasses.replace(NOTHING, **factor)


@pytest.mark.parametrize(
    ("inputs", "direction"),
    [
        (only(liquidations=LiquidationInput(1e6, 9e6, P)), "bullish"),  # shorts squeezed
        (only(liquidations=LiquidationInput(9e6, 1e6, P)), "bearish"),  # longs flushed
        (only(funding_rate=FundingInput(0.08, P)), "bearish"),  # crowded longs pay a lot
        (only(funding_rate=FundingInput(-0.06, P)), "bullish"),
        (only(momentum=MomentumInput({"1h": 1.5, "4h": 3, "24h": 8}, P)), "bullish"),
        (only(momentum=MomentumInput({"1h": -1.5, "4h": -3, "24h": -8}, P)), "bearish"),
        (only(long_short_ratio=LongShortInput(75, P)), "bearish"),  # crowd long: contrarian
        (only(long_short_ratio=LongShortInput(30, P)), "bullish"),
        (only(smart_money=SmartMoneyInput(65, P)), "bullish"),  # followed
        (only(open_interest=OpenInterestInput(8, 4, P)), "bullish"),  # new longs
        (only(open_interest=OpenInterestInput(8, -4, P)), "bearish"),  # new shorts
        (only(social=SocialInput(80, 75, P)), "bullish"),
        (only(fear_greed=FearGreedInput(8, P)), "bullish"),  # extreme fear: contrarian
        (only(fear_greed=FearGreedInput(92, P)), "bearish"),
    ],
)
def test_each_factor_reads_in_its_documented_direction(inputs: SignalInputs, direction: str) -> None:
    score = score_signal(inputs).score
    assert score > 60 if direction == "bullish" else score < 40


@pytest.mark.parametrize(
    ("inputs", "lo", "hi"),
    [
        (only(funding_rate=FundingInput(0.01, P)), 49, 51),  # the usual baseline says nothing
        (only(fear_greed=FearGreedInput(50, P)), 49, 51),
        (only(fear_greed=FearGreedInput(45, P)), 45, 55),  # the middle of the index is flat
        (only(liquidations=LiquidationInput(0, 0, P)), 50, 50),
        (only(open_interest=OpenInterestInput(-10, 0, P)), 50, 50),
    ],
)
def test_neutral_readings_stay_near_50(inputs: SignalInputs, lo: float, hi: float) -> None:
    assert lo <= score_signal(inputs).score <= hi


def test_a_one_candle_spike_does_not_flip_momentum() -> None:
    spike = score_signal(only(momentum=MomentumInput({"1h": 6.0, "4h": -2.5, "24h": -6.0}, P)))
    assert spike.score < 50


@pytest.mark.parametrize(
    ("score_inputs", "expected"),
    [
        (only(long_short_ratio=LongShortInput(0, P), smart_money=SmartMoneyInput(100, P)), "LONG"),
        (only(long_short_ratio=LongShortInput(100, P), smart_money=SmartMoneyInput(0, P)), "SHORT"),
        (only(long_short_ratio=LongShortInput(50, P)), "NEUTRAL"),
    ],
)
def test_direction_follows_the_thresholds(score_inputs: SignalInputs, expected: str) -> None:
    assert score_signal(score_inputs).direction == expected


def test_thresholds_are_inclusive() -> None:
    config = load_config()
    scored = score_signal(only(smart_money=SmartMoneyInput(50, P)), dataclasses.replace(config, long_threshold=50))
    assert scored.score == 50 and scored.direction == "LONG"


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_metrics_make_the_factor_missing_not_nan(bad: float) -> None:
    inputs = only(funding_rate=FundingInput(bad, P), fear_greed=FearGreedInput(30, P))
    scored = score_signal(inputs)
    assert not math.isnan(scored.score)
    assert ("funding_rate", "funding_rate.rate_pct: value is not a finite number") in scored.missing


@pytest.mark.parametrize(
    "inputs",
    [
        only(liquidations=LiquidationInput(-5, -1, P)),
        only(long_short_ratio=LongShortInput(-20, P)),
        only(smart_money=SmartMoneyInput(250, P)),
        only(momentum=MomentumInput({"1h": 0.0}, P)),
        only(open_interest=OpenInterestInput(1e9, -1e9, P)),
        only(funding_rate=FundingInput(1e12, P)),
        only(social=SocialInput(None, 0, P)),
    ],
)
def test_zero_negative_and_extreme_inputs_never_raise_or_leave_0_100(inputs: SignalInputs) -> None:
    scored = score_signal(inputs)
    assert 0 <= scored.score <= 100 and not math.isnan(scored.score)


def test_no_data_at_all_raises_no_data_error_with_reasons() -> None:
    with pytest.raises(NoDataError) as caught:
        score_signal(NOTHING)
    assert len(caught.value.missing) == 8


def test_explanations_quote_the_metrics_shown() -> None:
    scored = score_signal(only(long_short_ratio=LongShortInput(71.63, P), funding_rate=FundingInput(0.0523, P)))
    by_name = {f.name: f for f in scored.factors}
    assert by_name["long_short_ratio"].metrics["long_account_pct"] == 71.6
    assert "71.6% of accounts" in by_name["long_short_ratio"].explanation
    assert f"{by_name['funding_rate'].metrics['funding_rate_pct']:+.4f}%" in by_name["funding_rate"].explanation
    assert scored.reason == " | ".join(f.explanation for f in scored.top_factors)


def test_thin_coverage_is_never_high_confidence() -> None:
    scored = score_signal(only(long_short_ratio=LongShortInput(99, P), smart_money=SmartMoneyInput(1, P)))
    assert scored.score < 10 and scored.coverage == pytest.approx(0.25)
    assert scored.confidence != "high"


def test_strong_broad_agreement_is_high_confidence() -> None:
    inputs = SignalInputs(
        LiquidationInput(1e6, 9e6, P),
        FundingInput(-0.05, P),
        MomentumInput({"1h": 1, "4h": 3, "24h": 8}, P),
        LongShortInput(30, P),
        SmartMoneyInput(70, P),
        OpenInterestInput(6, 5, P),
        SocialInput(80, 80, P),
        FearGreedInput(10, P),
    )
    scored = score_signal(inputs)
    assert scored.direction == "LONG" and scored.confidence == "high" and scored.coverage == 1


def test_config_override_file_changes_weights_and_thresholds(tmp_path: Path) -> None:
    path = tmp_path / "scoring.toml"
    path.write_text("[weights]\nsocial = 0\n[thresholds]\nlong = 60\nshort = 40\n")
    config = load_config(path)
    assert config.weights["social"] == 0 and config.weights["liquidations"] == 20
    assert (config.long_threshold, config.short_threshold) == (60, 40)
    assert config.as_dict()["thresholds"] == {"long": 60, "short": 40}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[weights]\nfunding_rate = -1\n", "weights.funding_rate must be >= 0, got -1"),
        ("[thresholds]\nlong = 30\nshort = 40\n", "0 < short < long < 100"),
        ("[thresholds]\nshort = 0\n", "0 < short < long < 100"),
        ("[weights]\nvibes = 3\n", "unknown key 'weights.vibes'"),
        ("[scales]\nfunding_pct = 0\n", "scales.funding_pct must be > 0"),
        ("[weights]\nsocial = 'a lot'\n", "weights.social must be a finite number"),
        ("not toml at all [", "is not valid TOML"),
        ('[momentum]\n"1h" = [1]\n', "momentum.1h must be [weight, scale_pct]"),
    ],
)
def test_bad_config_is_rejected_with_a_message_naming_the_key(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "scoring.toml"
    path.write_text(text)
    with pytest.raises(ScoringConfigError, match=message.replace("(", r"\(").replace("[", r"\[")):
        load_config(path)
