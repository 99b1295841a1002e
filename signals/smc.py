"""Smart Money Concepts (SMC) structure read from closed candles: pure functions, no I/O.

Every structure is defined on CLOSED bars only, oldest first, and every one is something that was
known at the close of the bar that completes it: a swing at bar ``i`` is known at the close of bar
``i + N`` (its confirmation), a break at the close of the bar that closed beyond the level, and so
on. So the structure read at ``t`` from the whole history equals the one read from the bars up to
``t`` (``structure_at`` and the look-ahead test hold both against each other).

Definitions (the README's "SMC" section repeats them with a worked example):

- **Swing high** at bar ``i`` (``N = swing_bars``): ``high[i]`` is strictly above the highs of the
  ``N`` bars before it and at or above the highs of the ``N`` bars after it (of two equal tops the
  first is the swing). Swing low: the mirror image on lows. Confirmed at the close of bar ``i + N``.
- **Break of structure (BOS) / change of character (CHoCH)**: a bar whose CLOSE is above the most
  recent confirmed swing high (or below the most recent confirmed swing low) not yet broken breaks
  it. The first break, or a break in the direction of the current trend, is a BOS; a break against
  the trend is a CHoCH and turns the trend. Each swing level is broken at most once. The trend is
  the direction of the last break ("none" before any).
- **Order block (OB)**: for a bullish break of the swing high at bar ``s`` by bar ``b``: the move
  that broke it starts at the lowest low of bars ``s..b`` (its last occurrence, bar ``m``); the OB
  is the last down-close candle (close < open) of bars ``s..m``, else bar ``m`` itself; its zone is
  that candle's [low, high]. Mitigated when a bar after ``b`` trades back into it (low <= OB high).
  Bearish: the mirror image (highest high, last up-close candle, high >= OB low).
- **Fair value gap (FVG)**: three candles ``a, b, c``. Bullish when ``low[c] > high[a]``: the gap is
  [high[a], low[c]]; filled when a later bar's low reaches ``high[a]`` (the whole gap traded).
  Bearish when ``high[c] < low[a]``: the gap is [high[c], low[a]], filled when a later high reaches
  ``low[a]``. Its time is the middle candle's.
- **Equal highs / equal lows (liquidity)**: two swing highs within ``equal_tolerance_pct`` percent of
  each other, with no high between them above both, form a pool of buy-side liquidity at the higher
  of them (stops of shorts rest above); a third within tolerance joins it. Swept when a later bar's
  high trades above the pool. Equal lows: sell-side liquidity, the mirror image.
- **Premium / discount**: the current swing range runs from the most recent confirmed swing low to
  the most recent confirmed swing high; ``position = (close - low) / (high - low)`` (a fraction;
  outside 0..1 when price has left the range). Above 0.5 (the equilibrium) is premium, below is
  discount.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, Protocol

Direction = Literal["bullish", "bearish"]
Trend = Literal["bullish", "bearish", "none"]

DEFAULT_SWING_BARS = 3
DEFAULT_EQUAL_TOLERANCE_PCT = 0.1


class Bar(Protocol):
    """A candle: its OPEN time and prices (OKX and Coinglass candles both fit)."""

    @property
    def time(self) -> datetime: ...
    @property
    def open(self) -> float: ...
    @property
    def high(self) -> float: ...
    @property
    def low(self) -> float: ...
    @property
    def close(self) -> float: ...


@dataclass(frozen=True, slots=True)
class Candle:
    time: datetime  # open time
    open: float
    high: float
    low: float
    close: float


@dataclass(frozen=True, slots=True)
class Swing:
    kind: Literal["high", "low"]
    index: int
    time: datetime  # the swing bar's open time
    price: float  # its high (swing high) or low (swing low)
    confirmed_time: datetime  # close time of bar index + N: when the swing became known


@dataclass(frozen=True, slots=True)
class StructureBreak:
    kind: Literal["BOS", "CHOCH"]
    direction: Direction
    level: float  # the broken swing's price
    swing_time: datetime  # the broken swing's bar
    time: datetime  # open time of the bar that closed beyond the level
    close: float  # that bar's close


@dataclass(frozen=True, slots=True)
class OrderBlock:
    direction: Direction
    time: datetime  # the order-block candle's open time
    low: float
    high: float
    break_time: datetime  # the break it preceded
    mitigated: bool
    mitigated_time: datetime | None


@dataclass(frozen=True, slots=True)
class FairValueGap:
    direction: Direction
    time: datetime  # the middle candle's open time
    low: float
    high: float
    filled: bool
    filled_time: datetime | None


@dataclass(frozen=True, slots=True)
class LiquidityPool:
    side: Literal["buy_side", "sell_side"]  # equal highs: buy-side liquidity above; equal lows: sell-side below
    level: float
    swing_times: tuple[datetime, ...]
    swept: bool
    swept_time: datetime | None


@dataclass(frozen=True, slots=True)
class PriceLocation:
    range_high: float
    range_high_time: datetime
    range_low: float
    range_low_time: datetime
    equilibrium: float
    price: float  # close of the last bar
    position: float  # (price - low) / (high - low), a fraction
    zone: Literal["premium", "discount", "equilibrium"]


@dataclass(frozen=True, slots=True)
class MarketStructure:
    swing_bars: int
    equal_tolerance_pct: float
    bars: int
    first_time: datetime | None  # open time of the first bar read
    last_close_time: datetime | None  # close time of the last bar read
    trend: Trend
    swings: tuple[Swing, ...]
    breaks: tuple[StructureBreak, ...]
    order_blocks: tuple[OrderBlock, ...]
    fair_value_gaps: tuple[FairValueGap, ...]
    liquidity: tuple[LiquidityPool, ...]
    location: PriceLocation | None  # None until a swing high and a swing low are confirmed


def closed_bars(candles: Sequence[Bar], step: timedelta, now: datetime) -> list[Candle]:
    """The bars whose close time (open + step) is at or before ``now``, oldest first, one per time."""
    by_time = {c.time: c for c in candles if c.time + step <= now}
    return [Candle(c.time, c.open, c.high, c.low, c.close) for _, c in sorted(by_time.items())]


def contiguous_tail(bars: Sequence[Candle], step: timedelta) -> list[Candle]:
    """The run of bars ending with the newest whose open times are exactly ``step`` apart: structure
    is never read across a hole in the data (a swing "between" two distant bars means nothing)."""
    start = len(bars) - 1
    while start > 0 and bars[start].time - bars[start - 1].time == step:
        start -= 1
    return list(bars[max(start, 0) :])


def find_swings(bars: Sequence[Bar], n: int, step: timedelta) -> list[Swing]:
    if n < 1:
        raise ValueError(f"swing_bars must be at least 1, got {n}")
    swings: list[Swing] = []
    for i in range(n, len(bars) - n):
        before, after = bars[i - n : i], bars[i + 1 : i + n + 1]
        confirmed = bars[i + n].time + step
        high, low = bars[i].high, bars[i].low
        if high > max(b.high for b in before) and high >= max(b.high for b in after):
            swings.append(Swing("high", i, bars[i].time, high, confirmed))
        if low < min(b.low for b in before) and low <= min(b.low for b in after):
            swings.append(Swing("low", i, bars[i].time, low, confirmed))
    return swings


def _order_block(bars: Sequence[Bar], swing: Swing, b: int, direction: Direction) -> OrderBlock:
    span = range(swing.index, b + 1)
    if direction == "bullish":
        m = max(span, key=lambda k: (-bars[k].low, k))  # last occurrence of the lowest low
        opposite = [k for k in range(swing.index, m + 1) if bars[k].close < bars[k].open]
    else:
        m = max(span, key=lambda k: (bars[k].high, k))  # last occurrence of the highest high
        opposite = [k for k in range(swing.index, m + 1) if bars[k].close > bars[k].open]
    k = opposite[-1] if opposite else m
    low, high = bars[k].low, bars[k].high
    touched = next(
        (
            j
            for j in range(b + 1, len(bars))
            if (bars[j].low <= high if direction == "bullish" else bars[j].high >= low)
        ),
        None,
    )
    return OrderBlock(
        direction,
        bars[k].time,
        low,
        high,
        bars[b].time,
        touched is not None,
        bars[touched].time if touched is not None else None,
    )


def find_breaks(bars: Sequence[Bar], swings: Sequence[Swing], n: int) -> tuple[list[StructureBreak], list[OrderBlock]]:
    """BOS/CHoCH and the order block of each break, walking the bars in time order."""
    by_confirmation = sorted(swings, key=lambda s: (s.index + n, s.kind))
    breaks: list[StructureBreak] = []
    blocks: list[OrderBlock] = []
    trend: Trend = "none"
    active: dict[str, Swing | None] = {"high": None, "low": None}
    pointer = 0
    for j, bar in enumerate(bars):
        # Swings confirmed by the close of an earlier bar are known when bar j closes.
        while pointer < len(by_confirmation) and by_confirmation[pointer].index + n < j:
            swing = by_confirmation[pointer]
            active[swing.kind] = swing
            pointer += 1
        high, low = active["high"], active["low"]
        if high is not None and bar.close > high.price:
            kind: Literal["BOS", "CHOCH"] = "CHOCH" if trend == "bearish" else "BOS"
            breaks.append(StructureBreak(kind, "bullish", high.price, high.time, bar.time, bar.close))
            blocks.append(_order_block(bars, high, j, "bullish"))
            trend = "bullish"
            active["high"] = None
        elif low is not None and bar.close < low.price:
            kind = "CHOCH" if trend == "bullish" else "BOS"
            breaks.append(StructureBreak(kind, "bearish", low.price, low.time, bar.time, bar.close))
            blocks.append(_order_block(bars, low, j, "bearish"))
            trend = "bearish"
            active["low"] = None
    return breaks, blocks


def find_fair_value_gaps(bars: Sequence[Bar]) -> list[FairValueGap]:
    gaps: list[FairValueGap] = []
    for i in range(2, len(bars)):
        a, c = bars[i - 2], bars[i]
        if c.low > a.high:
            bottom = a.high
            filled = next((j for j in range(i + 1, len(bars)) if bars[j].low <= bottom), None)
            gaps.append(
                FairValueGap("bullish", bars[i - 1].time, a.high, c.low, filled is not None, _time(bars, filled))
            )
        elif c.high < a.low:
            top = a.low
            filled = next((j for j in range(i + 1, len(bars)) if bars[j].high >= top), None)
            gaps.append(
                FairValueGap("bearish", bars[i - 1].time, c.high, a.low, filled is not None, _time(bars, filled))
            )
    return gaps


def _time(bars: Sequence[Bar], index: int | None) -> datetime | None:
    return bars[index].time if index is not None else None


def find_liquidity(bars: Sequence[Bar], swings: Sequence[Swing], tolerance_pct: float) -> list[LiquidityPool]:
    pools: list[LiquidityPool] = []
    for kind in ("high", "low"):
        same = [s for s in swings if s.kind == kind]
        groups: list[list[Swing]] = []
        group_of: dict[int, list[Swing]] = {}
        for k, s in enumerate(same):
            for p in reversed(same[:k]):
                if abs(s.price - p.price) > tolerance_pct / 100 * p.price:
                    continue
                between = bars[p.index + 1 : s.index]
                if kind == "high":
                    clean = all(b.high <= max(p.price, s.price) for b in between)
                else:
                    clean = all(b.low >= min(p.price, s.price) for b in between)
                if not clean:
                    continue
                group = group_of.get(p.index)
                if group is None:
                    group = [p]
                    groups.append(group)
                    group_of[p.index] = group
                group.append(s)
                group_of[s.index] = group
                break
        for group in groups:
            last = group[-1].index
            if kind == "high":
                level = max(s.price for s in group)
                swept = next((j for j in range(last + 1, len(bars)) if bars[j].high > level), None)
                side: Literal["buy_side", "sell_side"] = "buy_side"
            else:
                level = min(s.price for s in group)
                swept = next((j for j in range(last + 1, len(bars)) if bars[j].low < level), None)
                side = "sell_side"
            pools.append(
                LiquidityPool(side, level, tuple(s.time for s in group), swept is not None, _time(bars, swept))
            )
    pools.sort(key=lambda p: p.swing_times[-1])
    return pools


def price_location(bars: Sequence[Bar], swings: Sequence[Swing], n: int) -> PriceLocation | None:
    """Where the last close sits in the range between the most recent confirmed swing high and low."""
    if not bars:
        return None
    last = len(bars) - 1
    known = [s for s in swings if s.index + n <= last]
    highs = [s for s in known if s.kind == "high"]
    lows = [s for s in known if s.kind == "low"]
    if not highs or not lows:
        return None
    h, lo = highs[-1], lows[-1]
    top, bottom = max(h, lo, key=lambda s: s.price), min(h, lo, key=lambda s: s.price)
    if top.price == bottom.price:
        return None
    price = bars[last].close
    position = (price - bottom.price) / (top.price - bottom.price)
    zone: Literal["premium", "discount", "equilibrium"] = (
        "premium" if position > 0.5 else "discount" if position < 0.5 else "equilibrium"
    )
    return PriceLocation(
        top.price, top.time, bottom.price, bottom.time, round((top.price + bottom.price) / 2, 8), price, position, zone
    )


def analyze(
    bars: Sequence[Bar],
    step: timedelta,
    *,
    swing_bars: int = DEFAULT_SWING_BARS,
    equal_tolerance_pct: float = DEFAULT_EQUAL_TOLERANCE_PCT,
) -> MarketStructure:
    """Every structure of ``bars`` (closed, oldest first, ``step`` apart)."""
    if equal_tolerance_pct < 0:
        raise ValueError(f"equal_tolerance_pct must be >= 0, got {equal_tolerance_pct}")
    swings = find_swings(bars, swing_bars, step)
    breaks, blocks = find_breaks(bars, swings, swing_bars)
    return MarketStructure(
        swing_bars=swing_bars,
        equal_tolerance_pct=equal_tolerance_pct,
        bars=len(bars),
        first_time=bars[0].time if bars else None,
        last_close_time=bars[-1].time + step if bars else None,
        trend=breaks[-1].direction if breaks else "none",
        swings=tuple(swings),
        breaks=tuple(breaks),
        order_blocks=tuple(blocks),
        fair_value_gaps=tuple(find_fair_value_gaps(bars)),
        liquidity=tuple(find_liquidity(bars, swings, equal_tolerance_pct)),
        location=price_location(bars, swings, swing_bars),
    )


# ---- the factor candidate ---------------------------------------------------------------------


def structure_reading(structure: MarketStructure) -> float | None:
    """A structure reading in [-1, 1] for the research command (weight 0 in the seed profile).

    +1: bullish trend (last break up) with price in discount (the SMC long setup); +0.5 bullish
    trend in premium (or at equilibrium); -1 bearish trend with price in premium (the SMC short
    setup); -0.5 bearish trend in discount; 0 no break yet. None: no swing range to place price in.
    """
    if structure.location is None:
        return None
    if structure.trend == "none":
        return 0.0
    sign = 1.0 if structure.trend == "bullish" else -1.0
    favoured = "discount" if structure.trend == "bullish" else "premium"
    return sign * (1.0 if structure.location.zone == favoured else 0.5)


def structure_at(
    bars: Sequence[Bar],
    step: timedelta,
    t: datetime,
    *,
    lookback: int = 200,
    swing_bars: int = DEFAULT_SWING_BARS,
    equal_tolerance_pct: float = DEFAULT_EQUAL_TOLERANCE_PCT,
) -> MarketStructure:
    """The structure as known at ``t``: the last ``lookback`` bars CLOSED by ``t`` (a replay clock)."""
    visible = closed_bars(bars, step, t)[-lookback:]
    return analyze(visible, step, swing_bars=swing_bars, equal_tolerance_pct=equal_tolerance_pct)


def reading_at(
    bars: Sequence[Bar], step: timedelta, t: datetime, *, lookback: int = 200, swing_bars: int = DEFAULT_SWING_BARS
) -> float | None:
    """``structure_reading`` at ``t`` from ``bars`` (any length; only bars closed by ``t`` are read)."""
    return structure_reading(structure_at(bars, step, t, lookback=lookback, swing_bars=swing_bars))


def reading_series(
    bars: Sequence[Bar], step: timedelta, *, lookback: int = 200, swing_bars: int = DEFAULT_SWING_BARS
) -> list[tuple[datetime, float | None]]:
    """(close time, ``structure_reading``) at the close of every bar, each from the ``lookback`` bars
    ending there: the factor's value on a panel (the research command's clock, ``t`` = each close)."""
    ordered = sorted(bars, key=lambda b: b.time)
    return [
        (
            ordered[i].time + step,
            structure_reading(analyze(ordered[max(0, i + 1 - lookback) : i + 1], step, swing_bars=swing_bars)),
        )
        for i in range(len(ordered))
    ]
