"""Staleness: a factor whose data is older than its maximum age is dropped by the scorer, the one
rule both clocks share (the live desk passes now, the replay the close of the bar).

The rule at its boundary, the [max_age_hours] configuration and its validation. Over REST through
Envoy with the recorded twin: tests/test_rest_api.py (test_old_data_*)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from scoring import (
    DEFAULT_CONFIG,
    FACTOR_NAMES,
    FearGreedInput,
    FundingInput,
    LongShortInput,
    Missing,
    NoDataError,
    Provenance,
    ScoringConfigError,
    SignalInputs,
    SmartMoneyInput,
    load_config,
    score_signal,
)

NOW = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)
NOTHING = SignalInputs(*(Missing("absent") for _ in range(8)))


def at(as_of: datetime | None) -> Provenance:
    return Provenance("test:/series", as_of)


def inputs(funding_as_of: datetime | None, long_short_as_of: datetime = NOW) -> SignalInputs:
    return dataclasses.replace(
        NOTHING,
        funding_rate=FundingInput(0.08, at(funding_as_of)),
        long_short_ratio=LongShortInput(70.0, at(long_short_as_of)),
    )


def test_shipped_max_ages_follow_each_source_interval() -> None:
    assert dict(DEFAULT_CONFIG.max_age_hours) == {
        "liquidations": 9,
        "funding_rate": 17,
        "momentum": 9,
        "long_short_ratio": 9,
        "smart_money": 9,
        "open_interest": 9,
        "social": 3,
        "fear_greed": 36,
    }
    assert DEFAULT_CONFIG.as_dict()["max_age_hours"]["fear_greed"] == 36


def test_data_exactly_at_its_max_age_scores_and_a_microsecond_older_is_dropped() -> None:
    limit = timedelta(hours=17)  # funding_rate
    fresh = score_signal(inputs(NOW - limit), now=NOW)
    assert [f.name for f in fresh.factors] == ["funding_rate", "long_short_ratio"]
    assert fresh.stale == () and all(name != "funding_rate" for name, _ in fresh.missing)

    old = NOW - limit - timedelta(microseconds=1)
    dropped = score_signal(inputs(old), now=NOW)
    assert [f.name for f in dropped.factors] == ["long_short_ratio"]
    assert dict(dropped.missing)["funding_rate"] == (f"stale: data from {old:%Y-%m-%d %H:%M} UTC, older than 17h")
    assert dropped.missing[1] == ("funding_rate", "stale: data from 2026-11-30 07:59 UTC, older than 17h")
    # Dropped means scored without it: the same as if it had no data at all.
    without = score_signal(dataclasses.replace(inputs(None), funding_rate=Missing("absent")), now=NOW)
    assert dropped.score == without.score and dropped.coverage == without.coverage
    # Kept for debug output: its reading, contributing nothing.
    (stale,) = dropped.stale
    assert stale.name == "funding_rate" and stale.contribution == 0 and stale.as_of == old
    assert stale.metrics == {"funding_rate_pct": 0.08} and stale.source == "test:/series"


def test_each_factor_is_judged_by_its_own_max_age() -> None:
    twenty_hours = NOW - timedelta(hours=20)
    scored = score_signal(
        dataclasses.replace(
            NOTHING,
            fear_greed=FearGreedInput(20, at(twenty_hours)),  # daily: 36h
            smart_money=SmartMoneyInput(60, at(twenty_hours)),  # 9h
        ),
        now=NOW,
    )
    assert [f.name for f in scored.factors] == ["fear_greed"]
    assert dict(scored.missing)["smart_money"].endswith("older than 9h")


def test_no_decision_time_or_no_data_time_judges_no_age() -> None:
    ancient = NOW - timedelta(days=400)
    assert [f.name for f in score_signal(inputs(ancient, ancient)).factors] == ["funding_rate", "long_short_ratio"]
    assert [f.name for f in score_signal(inputs(None), now=NOW).factors] == ["funding_rate", "long_short_ratio"]


def test_data_from_the_future_is_fresh() -> None:
    # OKX's funding answer is stamped at the time of the call; a provider clock ahead of ours is not stale.
    scored = score_signal(inputs(NOW + timedelta(minutes=5)), now=NOW)
    assert scored.stale == () and len(scored.factors) == 2


def test_when_every_factor_is_stale_there_is_no_data_and_the_reasons_say_why() -> None:
    old = NOW - timedelta(days=2)
    with pytest.raises(NoDataError) as caught:
        score_signal(inputs(old, old), now=NOW)
    reasons = dict(caught.value.missing)
    assert reasons["funding_rate"].startswith("stale: data from 2026-11-29 01:00 UTC")
    assert reasons["long_short_ratio"].endswith("older than 9h")


def test_max_ages_are_configurable_per_factor(tmp_path: Path) -> None:
    path = tmp_path / "scoring.toml"
    path.write_text("[max_age_hours]\nfunding_rate = 0.5\n")
    config = load_config(path)
    assert config.max_age_hours["funding_rate"] == 0.5
    assert config.max_age_hours["fear_greed"] == 36  # the others keep their defaults
    scored = score_signal(inputs(NOW - timedelta(minutes=31)), config, now=NOW)
    assert dict(scored.missing)["funding_rate"].endswith("older than 0.5h")
    assert len(score_signal(inputs(NOW - timedelta(minutes=30)), config, now=NOW).factors) == 2


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[max_age_hours]\nfunding = 8\n", "unknown key 'max_age_hours.funding'"),
        ("[max_age_hours]\nsocial = 0\n", "max_age_hours.social must be > 0 hours, got 0"),
        ("[max_age_hours]\nmomentum = -3\n", "max_age_hours.momentum must be > 0 hours, got -3"),
        ("[max_age_hours]\nfear_greed = '36h'\n", "max_age_hours.fear_greed must be a finite number, got '36h'"),
        ("[max_age_hours]\nfear_greed = inf\n", "max_age_hours.fear_greed must be a finite number"),
        ("[max_age_hours]\nliquidations = true\n", "max_age_hours.liquidations must be a finite number"),
        ("max_age_hours = 9\n", "[max_age_hours] must be a table"),
        ("[max_age]\nsocial = 3\n", "unknown key 'max_age'"),
    ],
)
def test_bad_max_ages_are_rejected_naming_the_key(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "scoring.toml"
    path.write_text(text)
    with pytest.raises(ScoringConfigError, match=message.replace("(", r"\(").replace("[", r"\[")):
        load_config(path)


def test_every_factor_has_a_shipped_max_age() -> None:
    assert set(DEFAULT_CONFIG.max_age_hours) == set(FACTOR_NAMES)
