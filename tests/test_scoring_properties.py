"""Property tests of the scorer: bounded, monotone, symmetric, coverage-exact, deterministic."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scoring import (
    DEFAULT_CONFIG,
    FACTOR_NAMES,
    FearGreedInput,
    FundingInput,
    LiquidationInput,
    LongShortInput,
    Missing,
    MomentumInput,
    NoDataError,
    OpenInterestInput,
    Provenance,
    SignalInputs,
    SmartMoneyInput,
    SocialInput,
    score_signal,
)

P = Provenance("test", None)
usd = st.floats(min_value=0, max_value=1e11, allow_nan=False)
pct = st.floats(min_value=0, max_value=100, allow_nan=False)
change = st.floats(min_value=-60, max_value=60, allow_nan=False)
funding = st.floats(min_value=-0.5, max_value=0.5, allow_nan=False)


@st.composite
def signal_inputs(draw: Any, allow_missing: bool = False) -> SignalInputs:
    def maybe(value: Any) -> Any:
        return Missing("absent") if allow_missing and draw(st.booleans()) else value

    return SignalInputs(
        liquidations=maybe(LiquidationInput(draw(usd), draw(usd), P)),
        funding_rate=maybe(FundingInput(draw(funding), P)),
        momentum=maybe(MomentumInput({"1h": draw(change), "4h": draw(change), "24h": draw(change)}, P)),
        long_short_ratio=maybe(LongShortInput(draw(pct), P)),
        smart_money=maybe(SmartMoneyInput(draw(pct), P)),
        open_interest=maybe(OpenInterestInput(draw(change), draw(change), P)),
        social=maybe(SocialInput(draw(pct), draw(pct), P)),
        fear_greed=maybe(FearGreedInput(draw(pct), P)),
    )


def mirror(i: SignalInputs) -> SignalInputs:
    """The same market seen upside down: every bullish reading becomes the matching bearish one."""
    neutral = DEFAULT_CONFIG.scales["funding_neutral_pct"]
    assert isinstance(i.liquidations, LiquidationInput) and isinstance(i.funding_rate, FundingInput)
    assert isinstance(i.momentum, MomentumInput) and isinstance(i.long_short_ratio, LongShortInput)
    assert isinstance(i.smart_money, SmartMoneyInput) and isinstance(i.open_interest, OpenInterestInput)
    assert isinstance(i.social, SocialInput) and isinstance(i.fear_greed, FearGreedInput)
    assert i.social.galaxy_score is not None and i.social.sentiment_pct is not None
    return SignalInputs(
        liquidations=LiquidationInput(i.liquidations.short_usd, i.liquidations.long_usd, P),
        funding_rate=FundingInput(2 * neutral - i.funding_rate.rate_pct, P),
        momentum=MomentumInput({h: -v for h, v in i.momentum.change_pct.items()}, P),
        long_short_ratio=LongShortInput(100 - i.long_short_ratio.long_account_pct, P),
        smart_money=SmartMoneyInput(100 - i.smart_money.top_trader_long_pct, P),
        open_interest=OpenInterestInput(i.open_interest.oi_change_pct, -i.open_interest.price_change_pct, P),
        social=SocialInput(100 - i.social.galaxy_score, 100 - i.social.sentiment_pct, P),
        fear_greed=FearGreedInput(100 - i.fear_greed.value, P),
    )


@given(signal_inputs(allow_missing=True))
def test_score_is_the_weighted_mean_of_the_sub_scores_so_within_0_and_100(inputs: SignalInputs) -> None:
    """The bound follows from what the score is (a weighted mean of sub-scores in 0-100, weights
    renormalised over the factors with data), not from a clamp: the mean itself is checked."""
    try:
        scored = score_signal(inputs)
    except NoDataError:
        assert all(isinstance(getattr(inputs, n), Missing) for n in FACTOR_NAMES)
        return
    assert all(0 <= f.sub_score <= 100 for f in scored.factors)
    weight = sum(f.weight for f in scored.factors)
    mean = sum(f.sub_score * f.weight for f in scored.factors) / weight
    assert scored.score == pytest.approx(mean, abs=1e-9)
    assert scored.score == pytest.approx(50 + sum(f.contribution for f in scored.factors), abs=1e-9)
    subs = [f.sub_score for f in scored.factors if f.weight > 0]
    assert min(subs) - 1e-9 <= scored.score <= max(subs) + 1e-9


@settings(max_examples=200)
@given(signal_inputs())
def test_mirrored_inputs_give_100_minus_the_score(inputs: SignalInputs) -> None:
    # Rounding of metrics to the displayed precision is symmetric, so the mirror is exact to 1e-6.
    assert score_signal(mirror(inputs)).score == pytest.approx(100 - score_signal(inputs).score, abs=1e-6)


@given(signal_inputs(allow_missing=True))
def test_same_inputs_always_give_the_same_output(inputs: SignalInputs) -> None:
    try:
        first = score_signal(inputs)
    except NoDataError:
        return
    assert first == score_signal(inputs)


@given(signal_inputs(), st.sampled_from(FACTOR_NAMES))
def test_removing_a_factor_lowers_coverage_by_exactly_its_weight_share(inputs: SignalInputs, factor: str) -> None:
    full = score_signal(inputs)
    reduced = score_signal(dataclasses.replace(inputs, **{factor: Missing("removed")}))
    share = DEFAULT_CONFIG.weights[factor] / DEFAULT_CONFIG.total_weight
    assert full.coverage - reduced.coverage == pytest.approx(share)
    assert (factor, "removed") in reduced.missing


# Each monotone metric: (how to set it, +1 if raising it is bullish, -1 if bearish).
MONOTONE: dict[str, tuple[Callable[[SignalInputs, float], SignalInputs], int]] = {
    "short liquidations": (lambda i, v: dataclasses.replace(i, liquidations=LiquidationInput(1e6, v * 1e6, P)), 1),
    "long liquidations": (lambda i, v: dataclasses.replace(i, liquidations=LiquidationInput(v * 1e6, 1e6, P)), -1),
    "funding": (lambda i, v: dataclasses.replace(i, funding_rate=FundingInput(v / 100 - 0.25, P)), -1),
    "momentum 24h": (lambda i, v: dataclasses.replace(i, momentum=MomentumInput({"24h": v - 25}, P)), 1),
    "crowd long share": (lambda i, v: dataclasses.replace(i, long_short_ratio=LongShortInput(v, P)), -1),
    "top traders long share": (lambda i, v: dataclasses.replace(i, smart_money=SmartMoneyInput(v, P)), 1),
    "price with OI": (lambda i, v: dataclasses.replace(i, open_interest=OpenInterestInput(5, v - 25, P)), 1),
    "galaxy score": (lambda i, v: dataclasses.replace(i, social=SocialInput(v, None, P)), 1),
    "fear and greed": (lambda i, v: dataclasses.replace(i, fear_greed=FearGreedInput(v, P)), -1),
}


@pytest.mark.parametrize("metric", list(MONOTONE))
@given(base=signal_inputs(), a=st.floats(0, 50), b=st.floats(0, 50))
def test_raising_a_bullish_metric_never_lowers_the_score(metric: str, base: SignalInputs, a: float, b: float) -> None:
    setter, direction = MONOTONE[metric]
    low, high = sorted((a, b))
    lower, higher = score_signal(setter(base, low)).score, score_signal(setter(base, high)).score
    if direction > 0:
        assert higher >= lower - 1e-9
    else:
        assert higher <= lower + 1e-9


@given(signal_inputs())
def test_contributions_add_up_to_the_score(inputs: SignalInputs) -> None:
    scored = score_signal(inputs)
    assert 50 + sum(f.contribution for f in scored.factors) == pytest.approx(scored.score)
    assert not any(math.isnan(f.contribution) for f in scored.factors)
