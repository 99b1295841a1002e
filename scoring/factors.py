"""The eight factors: raw metrics -> sub-score 0-100 (50 neutral) and a sentence with the numbers.

Every reading is a smooth, saturating function (tanh) of its metric divided by a configurable
scale (``[scales]`` in the TOML), so no single extreme input can dominate and the sub-score stays
strictly inside 0-100. Sub-scores use the raw values; the metrics shown (and quoted in the
sentences) are rounded for display only, so rounding never breaks the score's symmetry.

- **liquidations** (followed): imbalance = (short - long) / (short + long) over 24h. Longs being
  liquidated means forced selling into the market and trapped buyers: bearish pressure. Shorts
  being liquidated is a squeeze of forced buying: bullish. Balanced or no liquidations read 50.
- **funding_rate** (contrarian at extremes): funding is what longs pay shorts per 8h. Around the
  usual baseline (0.01%) it says nothing; far above it longs are over-leveraged and crowded, which
  historically precedes long squeezes (bearish); deeply negative funding means crowded shorts
  (bullish). A cubic inside tanh keeps the middle flat and the extremes strong.
- **momentum** (followed): percent price changes over 1h, 4h and 24h, each squashed by its own
  scale and blended with configurable weights, so a one-candle spike cannot flip the factor.
- **long_short_ratio** (contrarian): the share of accounts that are long. Retail crowding on one
  side is fuel for a move against it, so a crowd that is long reads bearish.
- **smart_money** (followed): top traders' long share by position size. Large, better-capitalised
  accounts are followed, not faded.
- **open_interest** (with price): new positions (rising OI) confirm the price move they come with;
  rising OI into falling price is new shorts (bearish), into rising price new longs (bullish).
  Falling OI is de-leveraging: the price move counts, but with less conviction.
- **social** (followed): LunarCrush galaxy score and the share of positive posts, each 0-100,
  averaged; above 50 is bullish attention.
- **fear_greed** (contrarian at extremes): extreme fear is where sellers are exhausted (bullish),
  extreme greed where buyers are (bearish); the middle of the index reads neutral.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from scoring.config import ScoringConfig
from scoring.model import (
    EXPLAINERS,
    REVERSAL_EXPLAINERS,
    FactorInput,
    FearGreedInput,
    FundingInput,
    LiquidationInput,
    LongShortInput,
    MomentumInput,
    OpenInterestInput,
    SmartMoneyInput,
    SocialInput,
)


class InvalidMetricError(ValueError):
    """A metric that cannot be read (NaN, infinite): the factor is treated as missing."""


@dataclass(slots=True)
class Reading:
    sub_score: float
    metrics: Mapping[str, float]


def _finite(value: float, name: str) -> float:
    try:
        if math.isfinite(value):
            return float(value)
    except TypeError:
        pass
    raise InvalidMetricError(f"{name}: value is not a finite number")


def _sub(x: float) -> float:
    """50 + 50 * tanh(x): bullish x > 0, bearish x < 0, never reaching 0 or 100 for finite x."""
    return 50.0 + 50.0 * math.tanh(x)


def _cube(x: float) -> float:
    # Flat around 0, steep at the extremes; clipped so tanh's argument stays reasonable.
    return max(-50.0, min(50.0, x)) ** 3


def _tone(sub_score: float) -> str:
    if sub_score >= 60:
        return "bullish"
    if sub_score <= 40:
        return "bearish"
    return "neutral"


def _usd(value: float) -> str:
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(value) >= size:
            return f"${value / size:.1f}{unit}"
    return f"${value:.0f}"


def liquidations(i: LiquidationInput, c: ScoringConfig) -> Reading:
    long_usd = max(0.0, _finite(i.long_usd, "liquidations.long_usd"))
    short_usd = max(0.0, _finite(i.short_usd, "liquidations.short_usd"))
    total = long_usd + short_usd
    long_share = round(long_usd / total * 100, 1) if total > 0 else 50.0
    imbalance = (short_usd - long_usd) / total if total > 0 else 0.0
    sub = _sub(imbalance / c.scales["liquidation_imbalance"])
    metrics = {
        "long_liquidation_usd": round(long_usd),
        "short_liquidation_usd": round(short_usd),
        "long_share_pct": long_share,
    }
    return Reading(sub, metrics)


def explain_liquidations(m: Mapping[str, float], sub: float) -> str:
    total = m["long_liquidation_usd"] + m["short_liquidation_usd"]
    long_share = m["long_share_pct"]
    if total <= 0:
        return "No liquidations in 24h - neutral"
    if long_share >= 50:
        return f"Longs were {long_share:.1f}% of {_usd(total)} liquidated in 24h - forced selling, {_tone(sub)}"
    return f"Shorts were {100 - long_share:.1f}% of {_usd(total)} liquidated in 24h - short squeeze, {_tone(sub)}"


def funding(i: FundingInput, c: ScoringConfig) -> Reading:
    rate = _finite(i.rate_pct, "funding_rate.rate_pct")
    x = (rate - c.scales["funding_neutral_pct"]) / c.scales["funding_pct"]
    return Reading(50.0 - 50.0 * math.tanh(_cube(x)), {"funding_rate_pct": round(rate, 4)})


def explain_funding(m: Mapping[str, float], sub: float) -> str:
    if sub <= 40:
        why = "longs overcrowded, contrarian bearish"
    elif sub >= 60:
        why = "shorts overcrowded, contrarian bullish"
    else:
        why = "near the usual baseline, neutral"
    return f"Funding {m['funding_rate_pct']:+.4f}% per 8h - {why}"


_MOMENTUM_KEYS: dict[str, str] = {}  # horizon -> metric name, built once per horizon


def momentum(i: MomentumInput, c: ScoringConfig) -> Reading:
    weighted, total, metrics = 0.0, 0.0, {}
    for horizon, (weight, scale) in c.momentum_horizons.items():
        if horizon not in i.change_pct:
            continue
        change = _finite(i.change_pct[horizon], f"momentum.{horizon}")
        key = _MOMENTUM_KEYS.get(horizon) or _MOMENTUM_KEYS.setdefault(horizon, f"price_change_{horizon}_pct")
        metrics[key] = round(change, 2)
        weighted += weight * math.tanh(change / scale)
        total += weight
    if total <= 0:
        raise InvalidMetricError("momentum: no configured horizon in the data")
    return Reading(50.0 + 50.0 * weighted / total, metrics)


def explain_momentum(m: Mapping[str, float], sub: float) -> str:
    parts = ", ".join(f"{key[13:-4]} {value:+.2f}%" for key, value in m.items())  # price_change_<h>_pct
    trend = "uptrend" if sub >= 55 else "downtrend" if sub <= 45 else "no clear trend"
    return f"Price {parts} - {trend}, {_tone(sub)}"


def long_short(i: LongShortInput, c: ScoringConfig) -> Reading:
    long_pct = min(100.0, max(0.0, _finite(i.long_account_pct, "long_short_ratio.long_account_pct")))
    return Reading(_sub(-(long_pct - 50.0) / c.scales["long_short_pct"]), {"long_account_pct": round(long_pct, 1)})


def explain_long_short(m: Mapping[str, float], sub: float) -> str:
    long_pct = m["long_account_pct"]
    if long_pct >= 55:
        return f"Overcrowded longs ({long_pct:.1f}% of accounts) - contrarian {_tone(sub)}"
    if long_pct <= 45:
        return f"Crowd leaning short ({long_pct:.1f}% of accounts long) - contrarian {_tone(sub)}"
    return f"Accounts balanced ({long_pct:.1f}% long) - neutral"


def smart_money(i: SmartMoneyInput, c: ScoringConfig) -> Reading:
    long_pct = min(100.0, max(0.0, _finite(i.top_trader_long_pct, "smart_money.top_trader_long_pct")))
    return Reading(_sub((long_pct - 50.0) / c.scales["smart_money_pct"]), {"top_trader_long_pct": round(long_pct, 1)})


def explain_smart_money(m: Mapping[str, float], sub: float) -> str:
    long_pct = m["top_trader_long_pct"]
    side = "long" if long_pct >= 50 else "short"
    share = long_pct if side == "long" else 100 - long_pct
    return f"Top traders {share:.1f}% {side} by position - following smart money, {_tone(sub)}"


def open_interest(i: OpenInterestInput, c: ScoringConfig) -> Reading:
    oi = _finite(i.oi_change_pct, "open_interest.oi_change_pct")
    price = _finite(i.price_change_pct, "open_interest.price_change_pct")
    conviction = 0.6 + 0.4 * math.tanh(oi / c.scales["oi_change_pct"])  # 0.2 (de-leveraging) .. 1.0 (new money)
    sub = 50.0 + 50.0 * math.tanh(price / c.scales["oi_price_pct"]) * conviction
    span = i.span_hours
    if span == 24:
        return Reading(sub, {"oi_change_24h_pct": round(oi, 2), "price_change_24h_pct": round(price, 2)})
    return Reading(sub, {f"oi_change_{span}h_pct": round(oi, 2), f"price_change_{span}h_pct": round(price, 2)})


def _oi_metrics(m: Mapping[str, float]) -> tuple[float, float, str]:
    """(OI change, price change, span such as "24h") from the metrics, whatever the lookback."""
    oi_key = next(k for k in m if k.startswith("oi_change_"))
    span = oi_key[len("oi_change_") : -len("_pct")]
    return m[oi_key], m[f"price_change_{span}_pct"], span


def _oi_story(oi: float, price: float) -> str:
    if oi >= 0:
        return "new longs" if price >= 0 else "new shorts"
    return "short covering" if price >= 0 else "long unwinding"


def explain_open_interest(m: Mapping[str, float], sub: float) -> str:
    oi, price, span = _oi_metrics(m)
    return f"Open interest {oi:+.2f}% with price {price:+.2f}% in {span} - {_oi_story(oi, price)}, {_tone(sub)}"


def social(i: SocialInput, c: ScoringConfig) -> Reading:
    values = {}
    if i.galaxy_score is not None:
        values["galaxy_score"] = min(100.0, max(0.0, _finite(i.galaxy_score, "social.galaxy_score")))
    if i.sentiment_pct is not None:
        values["sentiment_pct"] = min(100.0, max(0.0, _finite(i.sentiment_pct, "social.sentiment_pct")))
    if not values:
        raise InvalidMetricError("social: neither galaxy score nor sentiment present")
    sub = _sub((sum(values.values()) / len(values) - 50.0) / c.scales["social_points"])
    return Reading(sub, {name: round(value, 1) for name, value in values.items()})


def explain_social(m: Mapping[str, float], sub: float) -> str:
    parts = []
    if "galaxy_score" in m:
        parts.append(f"galaxy score {m['galaxy_score']:.1f}")
    if "sentiment_pct" in m:
        parts.append(f"{m['sentiment_pct']:.1f}% positive posts")
    return f"Social {', '.join(parts)} - {_tone(sub)}"


def fear_greed(i: FearGreedInput, c: ScoringConfig) -> Reading:
    value = min(100.0, max(0.0, _finite(i.value, "fear_greed.value")))
    x = (value - 50.0) / c.scales["fear_greed_points"]
    return Reading(50.0 - 50.0 * math.tanh(2.0 * _cube(x)), {"fear_greed_index": round(value, 1)})


def explain_fear_greed(m: Mapping[str, float], sub: float) -> str:
    value = m["fear_greed_index"]
    mood = (
        "extreme fear"
        if value <= 25
        else "fear"
        if value < 45
        else "extreme greed"
        if value >= 75
        else "greed"
        if value > 55
        else "neutral"
    )
    lean = f"contrarian {_tone(sub)}" if _tone(sub) != "neutral" else "neutral"
    return f"Fear & greed {value:.0f} ({mood}) - {lean}"


# ---- the same factors read as a reversal ([reversal] <factor> = true: the sub-score is 100 - s) ----
# The words say what the profile does with the reading: a move is expected to reverse, a crowd to be
# right, a squeeze to fade. ``sub`` is the (mirrored) sub-score the profile uses.


def _move(change: float, span: str) -> str:
    return f"{'up' if change >= 0 else 'down'} {abs(change):.2f}% in {span}"


def explain_liquidations_reversal(m: Mapping[str, float], sub: float) -> str:
    total = m["long_liquidation_usd"] + m["short_liquidation_usd"]
    long_share = m["long_share_pct"]
    if total <= 0:
        return "No liquidations in 24h - neutral"
    if long_share >= 50:
        return (
            f"Longs were {long_share:.1f}% of {_usd(total)} liquidated in 24h - "
            f"forced selling exhausted: short-term reversal, {_tone(sub)}"
        )
    return (
        f"Shorts were {100 - long_share:.1f}% of {_usd(total)} liquidated in 24h - "
        f"squeeze exhausted: short-term reversal, {_tone(sub)}"
    )


def explain_funding_reversal(m: Mapping[str, float], sub: float) -> str:
    rate = m["funding_rate_pct"]
    side = "longs" if rate >= 0 else "shorts"
    return f"Funding {rate:+.4f}% per 8h - {side} paying, read with the crowd (reversed contrarian), {_tone(sub)}"


def explain_momentum_reversal(m: Mapping[str, float], sub: float) -> str:
    parts = ", ".join(_move(value, key[13:-4]) for key, value in m.items())  # price_change_<h>_pct
    return f"Price {parts} - short-term reversal, {_tone(sub)}"


def explain_long_short_reversal(m: Mapping[str, float], sub: float) -> str:
    long_pct = m["long_account_pct"]
    return f"{long_pct:.1f}% of accounts long - read with the crowd (reversed contrarian), {_tone(sub)}"


def explain_smart_money_reversal(m: Mapping[str, float], sub: float) -> str:
    long_pct = m["top_trader_long_pct"]
    side = "long" if long_pct >= 50 else "short"
    share = long_pct if side == "long" else 100 - long_pct
    return f"Top traders {share:.1f}% {side} by position - faded (short-term reversal), {_tone(sub)}"


def explain_open_interest_reversal(m: Mapping[str, float], sub: float) -> str:
    oi, price, span = _oi_metrics(m)
    return (
        f"Open interest {oi:+.2f}% with price {price:+.2f}% in {span} - {_oi_story(oi, price)}, "
        f"expected to unwind: short-term reversal, {_tone(sub)}"
    )


def explain_social_reversal(m: Mapping[str, float], sub: float) -> str:
    return explain_social(m, sub).replace(" - ", " - faded attention (reversal), ", 1)


def explain_fear_greed_reversal(m: Mapping[str, float], sub: float) -> str:
    return f"Fear & greed {m['fear_greed_index']:.0f} - read with the mood (reversed contrarian), {_tone(sub)}"


REVERSAL_EXPLAINERS.update(
    {
        "liquidations": explain_liquidations_reversal,
        "funding_rate": explain_funding_reversal,
        "momentum": explain_momentum_reversal,
        "long_short_ratio": explain_long_short_reversal,
        "smart_money": explain_smart_money_reversal,
        "open_interest": explain_open_interest_reversal,
        "social": explain_social_reversal,
        "fear_greed": explain_fear_greed_reversal,
    }
)

# Sentences are built from the (rounded) metrics on demand: only the top three are needed per
# signal, and a sentence built from the metrics always quotes exactly the numbers shown.
EXPLAINERS.update(
    {
        "liquidations": explain_liquidations,
        "funding_rate": explain_funding,
        "momentum": explain_momentum,
        "long_short_ratio": explain_long_short,
        "smart_money": explain_smart_money,
        "open_interest": explain_open_interest,
        "social": explain_social,
        "fear_greed": explain_fear_greed,
    }
)

READERS: dict[str, Callable[[FactorInput, ScoringConfig], Reading]] = {
    "liquidations": liquidations,  # type: ignore[dict-item]
    "funding_rate": funding,  # type: ignore[dict-item]
    "momentum": momentum,  # type: ignore[dict-item]
    "long_short_ratio": long_short,  # type: ignore[dict-item]
    "smart_money": smart_money,  # type: ignore[dict-item]
    "open_interest": open_interest,  # type: ignore[dict-item]
    "social": social,  # type: ignore[dict-item]
    "fear_greed": fear_greed,  # type: ignore[dict-item]
}
